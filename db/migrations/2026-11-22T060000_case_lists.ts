import { type Kysely, sql } from 'kysely';

/**
 * Lists of cases and transfers answer from the read model with one indexed query: each case row carries when it
 * next needs someone (`due_at`), whether it was escalated, the rules that hold it, and since when it is at its
 * step. A list sorts by due soonest (null last) then id: the indexes are on that key, per agency, per counselor
 * and for open cases alone.
 * Backfill: `step_since` from `updated_at`, `escalated` and `due_at` (review SLA, notice due date, a sent
 * referral's deadline) from the state jsonb; `blocker_rules` and a follow-up's due time fill in at the case's
 * next change.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table cases
    add column due_at timestamptz,
    add column escalated boolean not null default false,
    add column blocker_rules text[] not null default '{}',
    add column step_since timestamptz not null default now()`.execute(db);

  await sql`update cases set
    step_since = updated_at,
    escalated = status = 'open' and jsonb_array_length(coalesce(state->'escalations', '[]'::jsonb)) > 0,
    due_at = case when status = 'open' and state is not null then least(
      case when step = 'decision_review' and state->'review'->>'state' = 'awaiting_review'
        then greatest(updated_at, created_at) + make_interval(hours => (state->'policy'->>'reviewSlaHours')::int) end,
      case when notice_due is not null and state->'conversation'->>'heldOn' is null
                and state->'conversation'->>'precludedBy' is null
        then notice_due::timestamp at time zone coalesce(state->'policy'->>'timeZone', 'UTC') end,
      (select min((r->>'sentAt')::timestamptz) + make_interval(days => (state->'policy'->>'referralSlaDays')::int)
         from jsonb_array_elements(state->'referrals') r where r->>'state' = 'sent')
    ) end`.execute(db);

  // Sort key: due soonest, a case with nothing due last, then the id (a total order for the cursor).
  await sql`create index cases_list_due_idx on cases
    (agency_id, (coalesce(due_at, 'infinity'::timestamptz)), case_id)`.execute(db);
  await sql`create index cases_list_open_due_idx on cases
    (agency_id, (coalesce(due_at, 'infinity'::timestamptz)), case_id) where status = 'open'`.execute(db);
  await sql`create index cases_list_counselor_due_idx on cases
    (agency_id, counselor_id, (coalesce(due_at, 'infinity'::timestamptz)), case_id)`.execute(db);
  await sql`create index cases_blocker_rules_idx on cases using gin (blocker_rules)`.execute(db);
  await sql`create index transfers_list_idx on transfers (agency_id, last_day, transfer_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index transfers_list_idx`.execute(db);
  await sql`alter table cases drop column due_at, drop column escalated, drop column blocker_rules,
    drop column step_since`.execute(db);
}
