import { type Kysely, sql } from 'kysely';

/**
 * The API's rate limit, shared by every replica: one fixed window per key (a client address, a token). Unlogged:
 * counters need no WAL (a hot key's upsert then holds its row lock for microseconds), and losing them in a crash
 * only restarts the windows. Idempotency keys get an index on their age, for the purge of expired ones.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create unlogged table rate_limit_windows (
    key text primary key,
    started_at timestamptz not null,
    count integer not null
  )`.execute(db);
  await db.schema.createIndex('idempotency_keys_created_at').on('idempotency_keys').column('created_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('idempotency_keys_created_at').execute();
  await db.schema.dropTable('rate_limit_windows').execute();
}
