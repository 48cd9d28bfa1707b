import { createHash } from 'node:crypto';
import { type Kysely, type Transaction, sql } from 'kysely';
import type { Role } from '../domain/case';
import type { AuditEventRow, AuditOutcome, Database } from './schema';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditEventInput {
  /** Business key that makes the write idempotent, e.g. `<caseId>:opened`. */
  eventKey: string;
  /** The agency the event belongs to; found from the case when not given. */
  agencyId?: string | null;
  actor: { id: string; role: Role | 'system' };
  action: string;
  caseId?: string | null;
  clientId?: string | null;
  outcome: AuditOutcome;
  outcomeReason?: string | null;
  requestId?: string | null;
  sourceAddress?: string | null;
  workflowId?: string | null;
  activityId?: string | null;
  before?: unknown;
  after?: unknown;
}

/** JSON with object keys sorted at every depth, so a hash does not depend on key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

type HashedFields = Omit<AuditEventRow, 'hash'>;

/** The hash of one event: SHA-256 over the previous hash and the event's content. */
export function hashEvent(row: HashedFields): string {
  const content = canonicalJson({
    seq: String(row.seq),
    event_key: row.event_key,
    occurred_at: row.occurred_at,
    actor_id: row.actor_id,
    actor_role: row.actor_role,
    action: row.action,
    case_id: row.case_id,
    client_id: row.client_id,
    outcome: row.outcome,
    outcome_reason: row.outcome_reason,
    request_id: row.request_id,
    source_address: row.source_address,
    workflow_id: row.workflow_id,
    activity_id: row.activity_id,
    before: row.before,
    after: row.after,
    // Left out when null, so events written before the column existed keep their hashes.
    agency_id: row.agency_id ?? undefined,
  });
  return createHash('sha256').update(row.prev_hash).update('\n').update(content).digest('hex');
}

// One lock id for the whole chain: concurrent writers queue here instead of forking it.
const AUDIT_CHAIN_LOCK = 7_240_611;

/**
 * Appends one event inside the caller's transaction, chained to the last one.
 * Idempotent by eventKey: a retried write returns the event already recorded.
 */
export async function appendAuditEvent(
  trx: Transaction<Database>,
  input: AuditEventInput,
): Promise<{ seq: string; hash: string; created: boolean }> {
  await sql`select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`.execute(trx);
  const existing = await trx
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .where('event_key', '=', input.eventKey)
    .executeTakeFirst();
  if (existing) return { ...existing, created: false };

  const last = await trx
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  // A user id names a person only within an agency: events about users carry their agency explicitly.
  const agencyId =
    input.agencyId ??
    (input.caseId
      ? (await trx.selectFrom('cases').select('agency_id').where('case_id', '=', input.caseId).executeTakeFirst())
          ?.agency_id
      : undefined) ??
    null;
  const row: HashedFields = {
    seq: String(BigInt(last?.seq ?? 0) + 1n),
    agency_id: agencyId,
    event_key: input.eventKey,
    occurred_at: new Date(),
    actor_id: input.actor.id,
    actor_role: input.actor.role,
    action: input.action,
    case_id: input.caseId ?? null,
    client_id: input.clientId ?? null,
    outcome: input.outcome,
    outcome_reason: input.outcomeReason ?? null,
    request_id: input.requestId ?? null,
    source_address: input.sourceAddress ?? null,
    workflow_id: input.workflowId ?? null,
    activity_id: input.activityId ?? null,
    before: input.before ?? null,
    after: input.after ?? null,
    prev_hash: last?.hash ?? GENESIS_HASH,
  };
  const hash = hashEvent(row);
  await trx
    .insertInto('audit_events')
    .values({
      ...row,
      before: row.before === null ? null : JSON.stringify(row.before),
      after: row.after === null ? null : JSON.stringify(row.after),
      hash,
    })
    .execute();
  return { seq: row.seq, hash, created: true };
}

/** A case's events in order. */
export async function listCaseAuditEvents(db: Kysely<Database>, caseId: string): Promise<AuditEventRow[]> {
  return db.selectFrom('audit_events').selectAll().where('case_id', '=', caseId).orderBy('seq').execute();
}

/**
 * A case's timeline for the people who work it: who did what, when, and whether it was refused; never the
 * before/after payloads. Newest last, at most `limit` events, the agency's own only.
 */
export async function caseTimeline(db: Kysely<Database>, agencyId: string, caseId: string, limit: number) {
  const rows = await db
    .selectFrom('audit_events')
    .select(['seq', 'occurred_at', 'actor_id', 'actor_role', 'action', 'outcome', 'outcome_reason'])
    .where('agency_id', '=', agencyId)
    .where('case_id', '=', caseId)
    .orderBy('seq', 'desc')
    .limit(limit + 1)
    .execute();
  return { events: rows.slice(0, limit).reverse(), truncated: rows.length > limit };
}

export interface ChainBreak {
  seq: string;
  reason: string;
}

export interface VerifyReport {
  ok: boolean;
  checked: number;
  headSeq: string | null;
  headHash: string;
  firstBroken: ChainBreak | null;
  anchor: { seq: string; hash: string; at: string; matches: boolean } | null;
}

export interface Anchor {
  seq: string;
  hash: string;
  at: string;
}

/**
 * Recomputes the whole chain in batches (flat memory): every event's hash from its content and the
 * previous hash, no gap in the sequence, and the last anchor written outside the database still on it.
 */
export async function verifyChain(db: Kysely<Database>, anchor: Anchor | null, batch = 2000): Promise<VerifyReport> {
  let previous = GENESIS_HASH;
  let expectedSeq = 1n;
  let checked = 0;
  let firstBroken: ChainBreak | null = null;
  let anchorMatches: boolean | null = anchor ? false : null;
  let after = 0n;
  let headSeq: string | null = null;
  for (;;) {
    const rows = await db
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>', String(after))
      .orderBy('seq')
      .limit(batch)
      .execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      checked++;
      const seq = BigInt(row.seq);
      if (!firstBroken) {
        if (seq !== expectedSeq)
          firstBroken = { seq: String(expectedSeq), reason: `event ${expectedSeq} is missing (next is ${seq})` };
        else if (row.prev_hash !== previous)
          firstBroken = { seq: row.seq, reason: 'its prev_hash does not match the event before it' };
        else if (hashEvent(row) !== row.hash)
          firstBroken = { seq: row.seq, reason: 'its content does not match its hash (altered)' };
      }
      if (anchor && row.seq === anchor.seq) anchorMatches = row.hash === anchor.hash;
      previous = row.hash;
      expectedSeq = seq + 1n;
      headSeq = row.seq;
    }
    after = BigInt(rows.at(-1)!.seq);
  }
  if (!firstBroken && anchor && !anchorMatches) {
    firstBroken = {
      seq: anchor.seq,
      reason: 'the chain no longer holds the head written out of the database at that point (rewritten)',
    };
  }
  return {
    ok: firstBroken === null,
    checked,
    headSeq,
    headHash: previous,
    firstBroken,
    anchor: anchor ? { ...anchor, matches: anchorMatches === true } : null,
  };
}

export interface AuditFilter {
  caseId?: string;
  clientId?: string;
  actorId?: string;
  action?: string;
  from?: Date;
  to?: Date;
  /** Only this agency's events. */
  agencyId: string;
  /** The head when the export began: later events are not part of it. */
  upToSeq: string;
}

function filtered(db: Kysely<Database>, filter: AuditFilter) {
  let query = db.selectFrom('audit_events').where('seq', '<=', filter.upToSeq).where('agency_id', '=', filter.agencyId);
  if (filter.caseId) query = query.where('case_id', '=', filter.caseId);
  if (filter.clientId) query = query.where('client_id', '=', filter.clientId);
  if (filter.actorId) query = query.where('actor_id', '=', filter.actorId);
  if (filter.action) query = query.where('action', '=', filter.action);
  if (filter.from) query = query.where('occurred_at', '>=', filter.from);
  if (filter.to) query = query.where('occurred_at', '<', filter.to);
  return query;
}

export async function summarize(db: Kysely<Database>, filter: AuditFilter) {
  return filtered(db, filter)
    .select((eb) => [eb.fn.countAll<string>().as('count'), eb.fn.min('seq').as('first'), eb.fn.max('seq').as('last')])
    .executeTakeFirstOrThrow();
}

/** The filtered events in order, a batch at a time, so a year of them streams with flat memory. */
export async function* eventBatches(
  db: Kysely<Database>,
  filter: AuditFilter,
  batch = 1000,
): AsyncGenerator<AuditEventRow[]> {
  let after = '0';
  for (;;) {
    const rows = await filtered(db, filter).selectAll().where('seq', '>', after).orderBy('seq').limit(batch).execute();
    if (rows.length === 0) return;
    yield rows;
    after = rows.at(-1)!.seq;
  }
}

export async function chainHead(db: Kysely<Database>): Promise<{ seq: string; hash: string } | undefined> {
  return db.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
}

/** How many of one agency's events the chain holds up to a point. */
export async function agencyEventCount(
  db: Kysely<Database>,
  agencyId: string,
  upToSeq: string | null,
): Promise<number> {
  if (!upToSeq) return 0;
  const row = await db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('agency_id', '=', agencyId)
    .where('seq', '<=', upToSeq)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** What was disclosed about one client of an agency since a date, with the consent behind each (42 CFR Part 2 §2.25). */
export async function accountingOfDisclosures(db: Kysely<Database>, agencyId: string, clientId: string, since: Date) {
  return db
    .selectFrom('disclosures as d')
    .leftJoin('consents as c', 'c.consent_id', 'd.consent_id')
    .select([
      'd.disclosed_at',
      'd.case_id',
      'd.recipient_provider_id',
      'd.disclosed',
      'd.substance_use_records',
      'd.redisclosure_notice',
      'd.consent_id',
      'c.purpose',
      'c.signed_on',
      'c.expires_on',
      'c.revoked_at',
    ])
    .innerJoin('cases as k', 'k.case_id', 'd.case_id')
    .where('k.agency_id', '=', agencyId)
    .where('d.client_id', '=', clientId)
    .where('d.disclosed_at', '>=', since)
    .orderBy('d.disclosed_at')
    .execute();
}
