import { type Kysely, sql } from 'kysely';

/**
 * Delivery: the outbox becomes a queue a sender drains (attempts, backoff, a lease while sending, a
 * dead-letter state); staff have an email address; letters to mail wait in the day's print batch.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('outbox')
    .addColumn('agency_id', 'text')
    // pending → sending (leased) → delivered | batched (waits for the front desk) | dead | withheld
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending'))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('claim_id', 'text')
    .addColumn('last_error', 'text')
    .execute();
  // A staff digest belongs to no case.
  await db.schema
    .alterTable('outbox')
    .alterColumn('case_id', (c) => c.dropNotNull())
    .execute();
  await sql`update outbox set status = 'delivered' where delivered_at is not null`.execute(db);
  await sql`update outbox o set agency_id = c.agency_id from cases c where c.case_id = o.case_id`.execute(db);
  await db.schema
    .createIndex('outbox_due_idx')
    .on('outbox')
    .column('next_attempt_at')
    .where(sql.ref('status'), 'in', sql`('pending', 'sending')`)
    .execute();

  await db.schema.alterTable('users').addColumn('email', 'text').execute();

  // One row per letter in an agency's print-and-mail batch of a day; the batch PDF is rendered from them.
  await db.schema
    .createTable('mail_batch_items')
    .addColumn('message_key', 'text', (c) => c.primaryKey())
    .addColumn('agency_id', 'text', (c) => c.notNull())
    .addColumn('batch_date', 'date', (c) => c.notNull())
    .addColumn('case_id', 'uuid', (c) => c.notNull().references('cases.case_id'))
    .addColumn('letter_id', 'uuid', (c) => c.notNull())
    .addColumn('content', 'jsonb', (c) => c.notNull())
    .addColumn('added_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('mailed_at', 'timestamptz')
    .addColumn('mailed_by', 'text')
    .execute();
  await db.schema
    .createIndex('mail_batch_items_day_idx')
    .on('mail_batch_items')
    .columns(['agency_id', 'batch_date'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('mail_batch_items').execute();
  await db.schema.alterTable('users').dropColumn('email').execute();
  await db.schema.dropIndex('outbox_due_idx').execute();
  await db.schema
    .alterTable('outbox')
    .dropColumn('agency_id')
    .dropColumn('status')
    .dropColumn('attempts')
    .dropColumn('next_attempt_at')
    .dropColumn('claim_id')
    .dropColumn('last_error')
    .execute();
}
