import { createHash } from 'node:crypto';
import { type Kysely, type Transaction, sql } from 'kysely';
import type { Role } from '../domain/case';
import type { AuditEventRow, AuditOutcome, Database } from './schema';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditEventInput {
  /** Business key that makes the write idempotent, e.g. `<caseId>:opened`. */
  eventKey: string;
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
  const row: HashedFields = {
    seq: String(BigInt(last?.seq ?? 0) + 1n),
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
