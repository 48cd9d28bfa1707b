import { type Kysely, sql } from 'kysely';

/**
 * Each agency is its own world: clients, clinicians and users are keyed by (agency_id, id), so the same
 * id in two agencies names two records; tokens and idempotency keys belong to an agency's user; one open
 * case per client and one open transfer per counselor hold within an agency, enforced by the database.
 * Existing rows keep their ids: until now ids were global, so every pair is already unique.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const duplicates = await sql<{ agency_id: string; client_id: string; cases: string }>`
    select agency_id, client_id, string_agg(case_id::text, ', ') as cases from cases
    where status in ('opening', 'open') group by agency_id, client_id having count(*) > 1`.execute(db);
  if (duplicates.rows.length > 0) {
    const list = duplicates.rows.map((d) => `${d.agency_id}/${d.client_id}: ${d.cases}`).join('; ');
    throw new Error(`clients with more than one open case; cancel all but one before migrating: ${list}`);
  }

  await sql`alter table api_tokens drop constraint if exists api_tokens_user_id_fkey`.execute(db);
  await sql`alter table users drop constraint users_pkey`.execute(db);
  await sql`alter table users add primary key (agency_id, user_id)`.execute(db);

  await db.schema.alterTable('api_tokens').addColumn('agency_id', 'text').execute();
  await sql`update api_tokens t set agency_id = u.agency_id from users u where u.user_id = t.user_id`.execute(db);
  await sql`delete from api_tokens where agency_id is null`.execute(db);
  await sql`alter table api_tokens alter column agency_id set not null`.execute(db);
  await sql`alter table api_tokens add constraint api_tokens_user_fkey
    foreign key (agency_id, user_id) references users (agency_id, user_id)`.execute(db);

  await db.schema.alterTable('idempotency_keys').addColumn('agency_id', 'text').execute();
  await sql`update idempotency_keys k set agency_id = u.agency_id from users u where u.user_id = k.user_id`.execute(db);
  await sql`delete from idempotency_keys where agency_id is null`.execute(db);
  await sql`alter table idempotency_keys alter column agency_id set not null`.execute(db);
  await sql`alter table idempotency_keys drop constraint idempotency_keys_pk`.execute(db);
  await sql`alter table idempotency_keys add constraint idempotency_keys_pk
    primary key (agency_id, user_id, idempotency_key)`.execute(db);

  await sql`alter table clients drop constraint clients_pkey`.execute(db);
  await sql`alter table clients add primary key (agency_id, client_id)`.execute(db);
  await db.schema.dropIndex('clients_counselor_idx').execute();
  await db.schema
    .createIndex('clients_counselor_idx')
    .on('clients')
    .columns(['agency_id', 'counselor_id', 'client_id'])
    .execute();

  await sql`alter table clinicians drop constraint clinicians_pkey`.execute(db);
  await sql`alter table clinicians add primary key (agency_id, clinician_id)`.execute(db);

  // One open case per client per agency: the API reserves the row before it starts the workflow.
  await sql`create unique index cases_one_open_per_client on cases (agency_id, client_id)
    where status in ('opening', 'open')`.execute(db);
  await db.schema.dropIndex('cases_client_idx').execute();
  await db.schema.createIndex('cases_client_idx').on('cases').columns(['agency_id', 'client_id']).execute();
  await db.schema.dropIndex('cases_counselor_idx').execute();
  await db.schema.createIndex('cases_counselor_idx').on('cases').columns(['agency_id', 'counselor_id']).execute();

  await db.schema.dropIndex('transfers_one_open_per_counselor').execute();
  await sql`create unique index transfers_one_open_per_counselor on transfers (agency_id, counselor_id)
    where status in ('opening', 'open')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('transfers_one_open_per_counselor').execute();
  await sql`create unique index transfers_one_open_per_counselor on transfers (counselor_id)
    where status in ('opening', 'open')`.execute(db);
  await db.schema.dropIndex('cases_counselor_idx').execute();
  await db.schema.createIndex('cases_counselor_idx').on('cases').column('counselor_id').execute();
  await db.schema.dropIndex('cases_client_idx').execute();
  await db.schema.createIndex('cases_client_idx').on('cases').column('client_id').execute();
  await db.schema.dropIndex('cases_one_open_per_client').execute();
  await sql`alter table clinicians drop constraint clinicians_pkey`.execute(db);
  await sql`alter table clinicians add primary key (clinician_id)`.execute(db);
  await db.schema.dropIndex('clients_counselor_idx').execute();
  await db.schema.createIndex('clients_counselor_idx').on('clients').columns(['counselor_id', 'client_id']).execute();
  await sql`alter table clients drop constraint clients_pkey`.execute(db);
  await sql`alter table clients add primary key (client_id)`.execute(db);
  await sql`alter table idempotency_keys drop constraint idempotency_keys_pk`.execute(db);
  await sql`alter table idempotency_keys add constraint idempotency_keys_pk primary key (user_id, idempotency_key)`.execute(
    db,
  );
  await db.schema.alterTable('idempotency_keys').dropColumn('agency_id').execute();
  await sql`alter table api_tokens drop constraint api_tokens_user_fkey`.execute(db);
  await db.schema.alterTable('api_tokens').dropColumn('agency_id').execute();
  await sql`alter table users drop constraint users_pkey`.execute(db);
  await sql`alter table users add primary key (user_id)`.execute(db);
  await sql`alter table api_tokens add constraint api_tokens_user_id_fkey foreign key (user_id) references users (user_id)`.execute(
    db,
  );
}
