import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Minimum necessary: identity, who they see, contact preferences, risk flags, what care they need.
  await db.schema
    .createTable('clients')
    .addColumn('client_id', 'text', (c) => c.primaryKey())
    .addColumn('agency_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('counselor_id', 'text', (c) => c.notNull())
    .addColumn('active', 'boolean', (c) => c.notNull())
    .addColumn('risk_flags', 'jsonb', (c) => c.notNull())
    .addColumn('contact', 'jsonb', (c) => c.notNull())
    .addColumn('has_sud_records', 'boolean', (c) => c.notNull())
    .addColumn('needs', 'jsonb', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('clients_counselor_idx').on('clients').columns(['counselor_id', 'client_id']).execute();

  await db.schema
    .createTable('clinicians')
    .addColumn('clinician_id', 'text', (c) => c.primaryKey())
    .addColumn('agency_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('capacity', 'integer', (c) => c.notNull())
    .addColumn('specialties', 'jsonb', (c) => c.notNull())
    .addColumn('active', 'boolean', (c) => c.notNull())
    .addColumn('contact', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('clinicians_agency_idx').on('clinicians').column('agency_id').execute();

  await db.schema
    .createTable('providers')
    .addColumn('provider_id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('contact', 'text', (c) => c.notNull())
    .addColumn('specialties', 'jsonb', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('transfers')
    .addColumn('transfer_id', 'uuid', (c) => c.primaryKey())
    .addColumn('agency_id', 'text', (c) => c.notNull())
    .addColumn('counselor_id', 'text', (c) => c.notNull())
    .addColumn('last_day', 'date', (c) => c.notNull())
    .addColumn('client_ids', 'jsonb')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('expected', 'integer', (c) => c.notNull())
    .addColumn('opened', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('requested_by_role', 'text', (c) => c.notNull())
    .addColumn('cancel_reason', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // One open transfer per counselor: a second start is refused by the database itself.
  await sql`create unique index transfers_one_open_per_counselor on transfers (counselor_id) where status in ('opening', 'open')`.execute(
    db,
  );

  // The receiving clinician proposed for each client of a transfer; a director may override it.
  await db.schema
    .createTable('proposals')
    .addColumn('case_id', 'uuid', (c) => c.primaryKey())
    .addColumn('transfer_id', 'uuid', (c) => c.notNull().references('transfers.transfer_id'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('clinician_id', 'text')
    .addColumn('overridden_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('proposals_transfer_idx').on('proposals').columns(['transfer_id', 'client_id']).execute();
  await db.schema.createIndex('proposals_clinician_idx').on('proposals').column('clinician_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['proposals', 'transfers', 'providers', 'clinicians', 'clients']) {
    await db.schema.dropTable(table).execute();
  }
}
