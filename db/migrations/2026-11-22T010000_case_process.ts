import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('agency_policies')
    .addColumn('agency_id', 'text', (c) => c.primaryKey())
    .addColumn('agency_name', 'text', (c) => c.notNull())
    .addColumn('agency_phone', 'text', (c) => c.notNull())
    .addColumn('policy', 'jsonb', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .alterTable('cases')
    .addColumn('transfer_id', 'text')
    .addColumn('client_name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('last_day', 'date')
    .addColumn('notice_due', 'date')
    .addColumn('risk_flags', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('contact', 'jsonb', (c) => c.notNull().defaultTo(sql`'{"channels":[],"noContactAtHome":false}'::jsonb`))
    .addColumn('has_sud_records', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('state', 'jsonb')
    .addColumn('state_version', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('cases_transfer_idx').on('cases').column('transfer_id').execute();

  await db.schema
    .createTable('referrals')
    .addColumn('referral_id', 'uuid', (c) => c.primaryKey())
    .addColumn('case_id', 'uuid', (c) => c.notNull().references('cases.case_id'))
    .addColumn('provider_id', 'text', (c) => c.notNull())
    .addColumn('provider_name', 'text', (c) => c.notNull())
    .addColumn('provider_contact', 'text', (c) => c.notNull())
    .addColumn('external', 'boolean', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('consent_id', 'uuid')
    .addColumn('appointment_at', 'timestamptz')
    .addColumn('history', 'jsonb', (c) => c.notNull())
    .addColumn('state_version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('referrals_case_idx').on('referrals').column('case_id').execute();

  await db.schema
    .createTable('consents')
    .addColumn('consent_id', 'uuid', (c) => c.primaryKey())
    .addColumn('case_id', 'uuid', (c) => c.notNull().references('cases.case_id'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('recipient_provider_id', 'text', (c) => c.notNull())
    .addColumn('disclosed', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('expires_on', 'date', (c) => c.notNull())
    .addColumn('covers_sud_records', 'boolean', (c) => c.notNull())
    .addColumn('signed_on', 'date', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('consents_client_idx').on('consents').column('client_id').execute();

  // The accounting of disclosures (42 CFR Part 2 §2.25): one row per disclosure, never changed.
  await db.schema
    .createTable('disclosures')
    .addColumn('disclosure_id', 'text', (c) => c.primaryKey())
    .addColumn('case_id', 'uuid', (c) => c.notNull().references('cases.case_id'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('recipient_provider_id', 'text', (c) => c.notNull())
    .addColumn('consent_id', 'uuid', (c) => c.notNull())
    .addColumn('disclosed', 'text', (c) => c.notNull())
    .addColumn('substance_use_records', 'boolean', (c) => c.notNull())
    .addColumn('redisclosure_notice', 'text')
    .addColumn('disclosed_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('disclosures_client_idx')
    .on('disclosures')
    .columns(['client_id', 'disclosed_at'])
    .execute();

  await db.schema
    .createTable('letters')
    .addColumn('letter_id', 'uuid', (c) => c.primaryKey())
    .addColumn('case_id', 'uuid', (c) => c.notNull().unique().references('cases.case_id'))
    .addColumn('html', 'text', (c) => c.notNull())
    .addColumn('pdf', 'bytea', (c) => c.notNull())
    .addColumn('pdf_sha256', 'text', (c) => c.notNull())
    .addColumn('html_sha256', 'text', (c) => c.notNull())
    .addColumn('channel', 'text')
    .addColumn('delivery', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('tasks')
    .addColumn('task_key', 'text', (c) => c.primaryKey())
    .addColumn('case_id', 'uuid', (c) => c.notNull().references('cases.case_id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('assignee_role', 'text', (c) => c.notNull())
    .addColumn('assignee_id', 'text')
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('done_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('tasks_case_idx').on('tasks').column('case_id').execute();

  // Outgoing messages for delivery systems (fax/direct messaging, mail, portal): written in the same
  // transaction as the event that caused them, delivered by whoever polls the table.
  await db.schema
    .createTable('outbox')
    .addColumn('message_key', 'text', (c) => c.primaryKey())
    .addColumn('case_id', 'uuid', (c) => c.notNull().references('cases.case_id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('delivered_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['outbox', 'tasks', 'letters', 'disclosures', 'consents', 'referrals', 'agency_policies']) {
    await db.schema.dropTable(table).execute();
  }
  await db.schema
    .alterTable('cases')
    .dropColumn('transfer_id')
    .dropColumn('client_name')
    .dropColumn('last_day')
    .dropColumn('notice_due')
    .dropColumn('risk_flags')
    .dropColumn('contact')
    .dropColumn('has_sud_records')
    .dropColumn('state')
    .dropColumn('state_version')
    .execute();
}
