import { type Kysely, sql } from 'kysely';

/**
 * One hash chain per agency, built off the write path. A writer inserts its event (its own digest, its number
 * from a sequence) and a line in `audit_pending`, and waits on nobody. The integrator chains pending events into
 * `audit_chain`, one agency at a time, in batches. Events written before this migration keep their hashes (their
 * `prev_hash` links the old global chain) and are queued here to be chained like any other.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create sequence audit_events_seq owned by audit_events.seq`.execute(db);
  await sql`select setval('audit_events_seq', coalesce((select max(seq) from audit_events), 0) + 1, false)`.execute(db);
  await sql`alter table audit_events alter column seq set default nextval('audit_events_seq')`.execute(db);
  // An event's digest no longer includes the event before it: that link is the chain's.
  await sql`alter table audit_events alter column prev_hash drop not null`.execute(db);

  await sql`create table audit_chain (
    chain text not null,
    position bigint not null,
    event_seq bigint not null unique references audit_events (seq),
    event_hash text not null,
    prev_hash text not null,
    hash text not null,
    integrated_at timestamptz not null default now(),
    primary key (chain, position)
  )`.execute(db);
  await sql`
    create function audit_append_only() returns trigger language plpgsql as $$
    begin
      raise exception '% is append-only: % is not allowed', tg_table_name, tg_op;
    end $$`.execute(db);
  await sql`
    create trigger audit_chain_no_update_delete
    before update or delete on audit_chain
    for each statement execute function audit_append_only()`.execute(db);
  await sql`
    create trigger audit_chain_no_truncate
    before truncate on audit_chain
    for each statement execute function audit_append_only()`.execute(db);

  await sql`create table audit_pending (
    event_seq bigint primary key references audit_events (seq),
    chain text not null,
    written_at timestamptz not null default now()
  )`.execute(db);
  await sql`create index audit_pending_chain on audit_pending (chain, event_seq)`.execute(db);
  await sql`insert into audit_pending (event_seq, chain)
    select seq, coalesce(agency_id, '') from audit_events order by seq`.execute(db);

  // Where an incremental verify starts: the last position of each chain found whole.
  await sql`create table audit_checkpoints (
    chain text not null,
    position bigint not null,
    hash text not null,
    verified_at timestamptz not null default now(),
    primary key (chain, position)
  )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_checkpoints').execute();
  await db.schema.dropTable('audit_pending').execute();
  await db.schema.dropTable('audit_chain').execute();
  await sql`drop function audit_append_only()`.execute(db);
  await sql`alter table audit_events alter column seq drop default`.execute(db);
  await sql`drop sequence audit_events_seq`.execute(db);
}
