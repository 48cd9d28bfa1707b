import { createHash } from 'node:crypto';
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { escapeLiteral } from 'pg';
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

/** The fields an event's digest covers: its seq and prev_hash only for events of the old global chain. */
type HashedFields = Omit<AuditEventRow, 'hash' | 'seq'> & { seq?: string };

/**
 * An event's own digest: SHA-256 over its content. An event written before the per-agency chains also covers its
 * seq and the hash of the event before it in the old global chain (`prev_hash`), as it always did, so its hash
 * still checks; since then an event's place is the chain's (`linkHash`), and its seq is not known until it is
 * inserted.
 */
export function hashEvent(row: HashedFields): string {
  const legacy = row.prev_hash !== null;
  const content = canonicalJson({
    seq: legacy ? String(row.seq) : undefined,
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
  const hash = createHash('sha256');
  if (legacy) hash.update(row.prev_hash!).update('\n');
  return hash.update(content).digest('hex');
}

/** One link of an agency's chain: the hash before it, its position, and the event it holds (seq and digest). */
export function linkHash(prevHash: string, position: string, eventSeq: string, eventHash: string): string {
  return createHash('sha256').update(`${prevHash}\n${position}:${eventSeq}:${eventHash}`).digest('hex');
}

/** The chain an agency's events go into; the service's own events (no agency) go into the chain named ''. */
export function chainOf(agencyId: string | null): string {
  return agencyId ?? '';
}

export interface AppendedEvent {
  seq: string;
  hash: string;
  created: boolean;
}

/**
 * Appends one event, in the caller's transaction or on its own (then it commits by itself, one round trip): one
 * statement that inserts the event and its line in the queue of events to chain. No lock: writers of any agency
 * never wait on one another (the integrator chains the event after commit). Idempotent by eventKey: a retried
 * write returns the event already recorded.
 */
export async function appendAuditEvent(trx: Kysely<Database>, input: AuditEventInput): Promise<AppendedEvent> {
  return (await appendAuditEvents(trx, [input]))[0]!;
}

/**
 * Appends events in one statement, in the order given (their seqs rise in that order, and so do their places in
 * their chains); answers each, in the same order. An event whose key is already recorded is not written again:
 * it answers the one recorded (one more statement, only then).
 */
export async function appendAuditEvents(
  trx: Kysely<Database>,
  inputs: readonly AuditEventInput[],
): Promise<AppendedEvent[]> {
  if (inputs.length === 0) return [];
  const rows: (HashedFields & { hash: string })[] = [];
  for (const input of inputs) {
    // A user id names a person only within an agency: events about users carry their agency explicitly.
    const agencyId =
      input.agencyId ??
      (input.caseId
        ? (await trx.selectFrom('cases').select('agency_id').where('case_id', '=', input.caseId).executeTakeFirst())
            ?.agency_id
        : undefined) ??
      null;
    const row: HashedFields = {
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
      prev_hash: null,
    };
    rows.push({ ...row, hash: hashEvent(row) });
  }
  const inserted = await trx
    .with('event', (db) =>
      db
        .insertInto('audit_events')
        .values(
          rows.map((row) => ({
            ...row,
            before: row.before === null ? null : JSON.stringify(row.before),
            after: row.after === null ? null : JSON.stringify(row.after),
          })),
        )
        // Any unique key: event_key is the one a retry meets (seq comes from a sequence).
        .onConflict((oc) => oc.doNothing())
        .returning(['seq', 'event_key', 'agency_id']),
    )
    // Runs whether or not the answer reads it: every event written gets its line in the queue, in its chain.
    .with('pending', (db) =>
      db
        .insertInto('audit_pending')
        .columns(['event_seq', 'chain'])
        .expression((db) =>
          db
            .selectFrom('event')
            .select(['event.seq', sql<string>`coalesce(event.agency_id, ${chainOf(null)})`.as('chain')]),
        ),
    )
    .selectFrom('event')
    .select(['event.seq', 'event.event_key'])
    .execute();
  const written = new Map(inserted.map((e) => [e.event_key, e.seq]));
  const missing = rows.filter((row) => !written.has(row.event_key)).map((row) => row.event_key);
  const recorded = new Map(
    missing.length === 0
      ? []
      : (
          await trx
            .selectFrom('audit_events')
            .select(['seq', 'hash', 'event_key'])
            .where('event_key', 'in', missing)
            .execute()
        ).map((e) => [e.event_key, e]),
  );
  return rows.map((row) => {
    const seq = written.get(row.event_key);
    if (seq !== undefined) return { seq, hash: row.hash, created: true };
    const existing = recorded.get(row.event_key);
    // Another unique key than event_key refused it: never expected, and never silently dropped.
    if (!existing) throw new Error(`audit event ${row.event_key} was neither written nor found`);
    return { seq: existing.seq, hash: existing.hash, created: false };
  });
}

// With the chain's name: one integrator at a time per chain, while other chains integrate beside it.
const CHAIN_LOCK = 7_240_613;

/** Chains up to `batch` of one chain's pending events, in one transaction; how many it chained. */
async function integrateChain(db: Kysely<Database>, chain: string, batch: number): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${CHAIN_LOCK}, hashtext(${chain}))`.execute(trx);
    const pending = await trx
      .selectFrom('audit_pending as p')
      .innerJoin('audit_events as e', 'e.seq', 'p.event_seq')
      .select(['p.event_seq', 'e.hash'])
      .where('p.chain', '=', chain)
      .orderBy('p.event_seq')
      .limit(batch)
      .execute();
    if (pending.length === 0) return 0;
    const head = await chainHead(trx, chain);
    let position = BigInt(head?.position ?? 0);
    let previous = head?.hash ?? GENESIS_HASH;
    const entries = pending.map((p) => {
      position++;
      const hash = linkHash(previous, String(position), p.event_seq, p.hash);
      const entry = {
        chain,
        position: String(position),
        event_seq: p.event_seq,
        event_hash: p.hash,
        prev_hash: previous,
        hash,
      };
      previous = hash;
      return entry;
    });
    await trx.insertInto('audit_chain').values(entries).execute();
    await trx
      .deleteFrom('audit_pending')
      .where(
        'event_seq',
        'in',
        pending.map((p) => p.event_seq),
      )
      .execute();
    return entries.length;
  });
}

/**
 * The sequencer: chains every pending event, each agency's into its own chain, in batches, in the order of
 * their seq within a batch. Run by every worker every second and before a verify or an export; two at once take
 * turns per chain (an advisory lock), never per event written. Returns how many events it chained.
 */
export async function integrateAuditChains(
  db: Kysely<Database>,
  options: { chains?: readonly string[]; batch?: number; maxRounds?: number } = {},
): Promise<number> {
  const batch = options.batch ?? 5_000;
  if (options.chains?.length === 0) return 0;
  let total = 0;
  // Bounded: under a flood of writes a caller (a verify, an export) gets on with what is chained by then.
  for (let round = 0; round < (options.maxRounds ?? 20); round++) {
    let query = db.selectFrom('audit_pending').select('chain').distinct();
    if (options.chains) query = query.where('chain', 'in', options.chains);
    let full = false;
    for (const { chain } of await query.execute()) {
      const chained = await integrateChain(db, chain, batch);
      total += chained;
      full ||= chained === batch;
    }
    if (!full) break;
  }
  return total;
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

/** Where a chain first fails to check: the position, the event it holds when known, and why. */
export interface ChainBreak {
  chain: string;
  position: string;
  seq: string | null;
  reason: string;
}

export interface ChainReport {
  chain: string;
  /** The position checked from: 0 for the whole chain, else the last checkpoint found whole. */
  from: string;
  checked: number;
  headPosition: string | null;
  headHash: string;
  firstBroken: ChainBreak | null;
}

export interface VerifyReport {
  ok: boolean;
  /** From the genesis of every chain (and every event accounted for), not from the last checkpoints. */
  full: boolean;
  checked: number;
  chains: ChainReport[];
  firstBroken: ChainBreak | null;
  /** Events written and not chained yet (the integrator runs every second). */
  pending: { events: number; oldestWrittenAt: string | null };
  /** With `full`: events in no chain and not queued for one (a queue line deleted by hand). */
  unchained: number | null;
  anchor: { at: string; matches: boolean } | null;
}

/**
 * The heads of the chains written out of the database at a point. Lines written before the per-agency chains
 * hold the old global chain's head (`seq`, `hash`) instead.
 */
export interface Anchor {
  at: string;
  chains?: Record<string, { position: string; hash: string }>;
  seq?: string;
  hash?: string;
}

/** Every chain's last entry. A skip scan over the primary key: one probe per chain, however long the chains. */
export async function chainHeads(
  db: Kysely<Database>,
): Promise<Array<{ chain: string; position: string; hash: string }>> {
  const { rows } = await sql<{ chain: string; position: string; hash: string }>`
    with recursive chains (chain) as (
      (select chain from audit_chain order by chain limit 1)
      union all
      select (select c.chain from audit_chain c where c.chain > chains.chain order by c.chain limit 1)
        from chains where chains.chain is not null
    )
    select chains.chain, head.position, head.hash
      from chains
      cross join lateral (
        select position, hash from audit_chain h where h.chain = chains.chain order by position desc limit 1
      ) head
     where chains.chain is not null`.execute(db);
  return rows;
}

/** The last row of a chain's entries or of its checkpoints (both keyed by chain and position). */
async function lastOf(db: Kysely<Database>, table: 'audit_chain' | 'audit_checkpoints', chain: string) {
  return db
    .selectFrom(table)
    .select(['position', 'hash'])
    .where('chain', '=', chain)
    .orderBy('position', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** One chain's last entry; none for a chain with no events chained yet. */
export async function chainHead(db: Kysely<Database>, chain: string) {
  return lastOf(db, 'audit_chain', chain);
}

/** Checks one chain from a start (genesis or a checkpoint) to its head, a batch at a time (flat memory). */
async function verifyOneChain(
  db: Kysely<Database>,
  chain: string,
  start: { position: string; hash: string },
  batch: number,
): Promise<ChainReport> {
  let previous = start.hash;
  let expected = BigInt(start.position) + 1n;
  let checked = 0;
  let firstBroken: ChainBreak | null = null;
  let headPosition: string | null = start.position === '0' ? null : start.position;
  const broken = (position: string, seq: string | null, reason: string) => {
    firstBroken ??= { chain, position, seq, reason };
  };
  for (;;) {
    const rows = await db
      .selectFrom('audit_chain as c')
      .leftJoin('audit_events as e', 'e.seq', 'c.event_seq')
      .selectAll('e')
      .select([
        'c.position as chain_position',
        'c.event_seq as chain_event_seq',
        'c.event_hash as chain_event_hash',
        'c.prev_hash as chain_prev_hash',
        'c.hash as chain_hash',
      ])
      .where('c.chain', '=', chain)
      .where('c.position', '>=', String(expected))
      .orderBy('c.position')
      .limit(batch)
      .execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      checked++;
      const position = BigInt(row.chain_position);
      if (position !== expected) broken(String(expected), null, `entry ${expected} is missing (next is ${position})`);
      else if (row.chain_prev_hash !== previous) {
        broken(row.chain_position, row.chain_event_seq, 'its prev_hash does not match the entry before it');
      } else if (linkHash(previous, row.chain_position, row.chain_event_seq, row.chain_event_hash) !== row.chain_hash) {
        broken(row.chain_position, row.chain_event_seq, 'its hash does not match its link (altered)');
      } else if (row.seq === null) {
        broken(row.chain_position, row.chain_event_seq, `its event ${row.chain_event_seq} is gone (deleted)`);
      } else if (row.hash !== row.chain_event_hash || hashEvent(row as AuditEventRow) !== row.hash) {
        broken(row.chain_position, row.chain_event_seq, 'its event does not match its hash (altered)');
      }
      previous = row.chain_hash;
      expected = position + 1n;
      headPosition = row.chain_position;
    }
  }
  return { chain, from: start.position, checked, headPosition, headHash: previous, firstBroken };
}

/**
 * Recomputes the chains (every one, or an agency's): each entry's link from the one before it, each event's digest
 * from its content, no gap in positions, and the heads last written out of the database still on them. From the
 * last checkpoint of each chain unless `full`; a chain found whole gets a new checkpoint at its head. What was
 * checked before a checkpoint is covered by the anchors from then on, and by a full verify (`npm run audit --
 * verify --full`, and the reconcile once a day).
 */
export async function verifyChain(
  db: Kysely<Database>,
  anchor: Anchor | null,
  options: { chains?: readonly string[]; full?: boolean; batch?: number } = {},
): Promise<VerifyReport> {
  const batch = options.batch ?? 2_000;
  const full = options.full ?? false;
  const names = options.chains ?? (await chainHeads(db)).map((h) => h.chain);
  const chains: ChainReport[] = [];
  for (const chain of names) {
    const checkpoint = full ? undefined : await lastOf(db, 'audit_checkpoints', chain);
    const report = await verifyOneChain(db, chain, checkpoint ?? { position: '0', hash: GENESIS_HASH }, batch);
    if (!report.firstBroken && report.headPosition && report.headPosition !== checkpoint?.position) {
      await db
        .insertInto('audit_checkpoints')
        .values({ chain, position: report.headPosition, hash: report.headHash })
        .onConflict((oc) => oc.columns(['chain', 'position']).doNothing())
        .execute();
    }
    chains.push(report);
  }

  let firstBroken = chains.find((c) => c.firstBroken)?.firstBroken ?? null;
  let anchorMatches: boolean | null = null;
  if (anchor?.chains) {
    anchorMatches = true;
    for (const [chain, head] of Object.entries(anchor.chains)) {
      if (options.chains && !options.chains.includes(chain)) continue;
      const entry = await db
        .selectFrom('audit_chain')
        .select('hash')
        .where('chain', '=', chain)
        .where('position', '=', head.position)
        .executeTakeFirst();
      if (entry?.hash !== head.hash) {
        anchorMatches = false;
        firstBroken ??= {
          chain,
          position: head.position,
          seq: null,
          reason: 'the chain no longer holds the head written out of the database at that point (rewritten)',
        };
      }
    }
  } else if (anchor?.seq && !options.chains) {
    // A head of the old global chain: the event it named must still have that hash.
    const event = await db.selectFrom('audit_events').select('hash').where('seq', '=', anchor.seq).executeTakeFirst();
    anchorMatches = event?.hash === anchor.hash;
    if (!anchorMatches) {
      firstBroken ??= {
        chain: '',
        position: '0',
        seq: anchor.seq,
        reason: 'the event at the head written out of the database has another hash (rewritten)',
      };
    }
  }

  let pendingQuery = db
    .selectFrom('audit_pending')
    .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.min('written_at').as('oldest')]);
  if (options.chains) pendingQuery = pendingQuery.where('chain', 'in', options.chains);
  const pending = await pendingQuery.executeTakeFirstOrThrow();
  let unchained: number | null = null;
  if (full) {
    let query = db
      .selectFrom('audit_events as e')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where((eb) =>
        eb.not(
          eb.exists(eb.selectFrom('audit_chain as c').select('c.event_seq').whereRef('c.event_seq', '=', 'e.seq')),
        ),
      )
      .where((eb) =>
        eb.not(
          eb.exists(eb.selectFrom('audit_pending as p').select('p.event_seq').whereRef('p.event_seq', '=', 'e.seq')),
        ),
      );
    if (options.chains) query = query.where(sql<string>`coalesce(e.agency_id, '')`, 'in', options.chains);
    unchained = Number((await query.executeTakeFirstOrThrow()).n);
  }
  return {
    ok: firstBroken === null && !unchained,
    full,
    checked: chains.reduce((sum, c) => sum + c.checked, 0),
    chains,
    firstBroken,
    pending: {
      events: Number(pending.n),
      oldestWrittenAt: pending.oldest ? new Date(pending.oldest).toISOString() : null,
    },
    unchained,
    anchor: anchor && anchorMatches !== null ? { at: anchor.at, matches: anchorMatches } : null,
  };
}

/** The events written and not chained yet, and how long the oldest has waited. */
export async function auditBacklog(db: Kysely<Database>): Promise<{ events: number; oldestSeconds: number }> {
  const { rows } = await sql<{ events: string; oldest: number | null }>`
    select count(*) as events, extract(epoch from now() - min(written_at))::float8 as oldest
      from audit_pending`.execute(db);
  return { events: Number(rows[0]?.events ?? 0), oldestSeconds: rows[0]?.oldest ?? 0 };
}

export interface AuditFilter {
  caseId?: string;
  clientId?: string;
  actorId?: string;
  action?: string;
  from?: Date;
  to?: Date;
  /** Only this agency's events: its chain. */
  agencyId: string;
  /** The chain's head when the export began: later events are not part of it. */
  upToPosition: string;
}

function filtered(db: Kysely<Database>, filter: AuditFilter) {
  let query = db
    .selectFrom('audit_chain as c')
    .innerJoin('audit_events as e', 'e.seq', 'c.event_seq')
    .where('c.chain', '=', filter.agencyId)
    .where('c.position', '<=', filter.upToPosition);
  if (filter.caseId) query = query.where('e.case_id', '=', filter.caseId);
  if (filter.clientId) query = query.where('e.client_id', '=', filter.clientId);
  if (filter.actorId) query = query.where('e.actor_id', '=', filter.actorId);
  if (filter.action) query = query.where('e.action', '=', filter.action);
  if (filter.from) query = query.where('e.occurred_at', '>=', filter.from);
  if (filter.to) query = query.where('e.occurred_at', '<', filter.to);
  return query;
}

/** The export's manifest: how many events it holds, and their first and last places in the agency's chain. */
export async function summarize(
  db: Kysely<Database>,
  filter: AuditFilter,
): Promise<{ count: string; first: string | null; last: string | null }> {
  const { agencyId, upToPosition, ...narrowing } = filter;
  if (Object.values(narrowing).every((value) => value === undefined)) {
    // The whole chain up to its head: its places run on without a gap (the integrator writes each after the one
    // before, and a trigger refuses any delete), so the count is read off the chain's key, not counted. A removed entry
    // then shows as a manifest that promises more rows than the file has, besides the broken link.
    const { first } = await db
      .selectFrom('audit_chain')
      .select((eb) => eb.fn.min('position').as('first'))
      .where('chain', '=', agencyId)
      .where('position', '<=', upToPosition)
      .executeTakeFirstOrThrow();
    if (first === null) return { count: '0', first: null, last: null };
    return { count: String(BigInt(upToPosition) - BigInt(first) + 1n), first, last: upToPosition };
  }
  return filtered(db, filter)
    .select((eb) => [
      eb.fn.countAll<string>().as('count'),
      eb.fn.min('c.position').as('first'),
      eb.fn.max('c.position').as('last'),
    ])
    .executeTakeFirstOrThrow();
}

/** An exported event: the event, and its entry in the agency's chain, so the export checks on its own. */
export type ExportedEvent = AuditEventRow & {
  chain_position: string;
  chain_prev_hash: string;
  chain_hash: string;
};

/** The filtered events in chain order, a batch at a time, so a year of them streams with flat memory. */
export async function* eventBatches(
  db: Kysely<Database>,
  filter: AuditFilter,
  batch = 1000,
): AsyncGenerator<ExportedEvent[]> {
  let after = '0';
  for (;;) {
    const rows = await filtered(db, filter)
      .selectAll('e')
      .select(['c.position as chain_position', 'c.prev_hash as chain_prev_hash', 'c.hash as chain_hash'])
      .where('c.position', '>', after)
      .orderBy('c.position')
      .limit(batch)
      .execute();
    if (rows.length === 0) return;
    yield rows;
    after = rows.at(-1)!.chain_position;
  }
}

/** The columns of a CSV export, in order: the event, then its entry in the agency's chain. */
export const EXPORT_COLUMNS = [
  'seq',
  'occurred_at',
  'actor_id',
  'actor_role',
  'action',
  'case_id',
  'client_id',
  'outcome',
  'outcome_reason',
  'request_id',
  'source_address',
  'workflow_id',
  'activity_id',
  'before',
  'after',
  'event_key',
  'prev_hash',
  'hash',
  'chain_position',
  'chain_prev_hash',
  'chain_hash',
] as const;

/**
 * A text cell a spreadsheet would run as a formula (=, +, -, @, tab or CR first, or their full-width forms) gets a
 * quote in front, so compliance staff opening an export see what someone typed and never run it (OWASP's CSV
 * injection advice, as csv-stringify's escape_formulas does it).
 */
function formulaSafe(text: RawBuilder<unknown>): RawBuilder<string> {
  const risky = sql`left(${text}, 1) in ('=', '+', '-', '@', chr(9), chr(13), chr(65309), chr(65291), chr(65293), chr(65312))`;
  return sql<string>`case when ${risky} then '''' || ${text} else ${text} end`;
}

/** A value as an SQL literal: COPY takes no parameters. Only the kinds a filter holds are accepted. */
function literal(value: unknown): string {
  if (typeof value === 'string') return escapeLiteral(value);
  if (value instanceof Date) return `${escapeLiteral(value.toISOString())}::timestamptz`;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  throw new Error(`an export filter holds a ${typeof value}, which is not written as a literal here`);
}

/**
 * The filtered events in chain order as one `COPY … TO STDOUT` in CSV with a header: PostgreSQL writes the file,
 * the API only passes it on, so a million events cost what COPY costs and no row is held in the API's memory.
 * Dates are ISO 8601 in UTC, before/after JSON, every text cell formula-safe.
 */
export function csvExportCopy(db: Kysely<Database>, filter: AuditFilter): string {
  const text = (column: string) => formulaSafe(sql`${sql.ref(column)}::text`);
  const plain = (column: string) => sql<string>`${sql.ref(column)}::text`;
  const cells: Record<(typeof EXPORT_COLUMNS)[number], RawBuilder<unknown>> = {
    seq: plain('e.seq'),
    occurred_at: sql`to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
    actor_id: text('e.actor_id'),
    actor_role: text('e.actor_role'),
    action: text('e.action'),
    case_id: plain('e.case_id'),
    client_id: text('e.client_id'),
    outcome: text('e.outcome'),
    outcome_reason: text('e.outcome_reason'),
    request_id: text('e.request_id'),
    source_address: text('e.source_address'),
    workflow_id: text('e.workflow_id'),
    activity_id: text('e.activity_id'),
    before: text('e.before'),
    after: text('e.after'),
    event_key: text('e.event_key'),
    prev_hash: plain('e.prev_hash'),
    hash: plain('e.hash'),
    chain_position: plain('c.position'),
    chain_prev_hash: plain('c.prev_hash'),
    chain_hash: plain('c.hash'),
  };
  const query = filtered(db, filter)
    .select(EXPORT_COLUMNS.map((column) => cells[column].as(column)))
    .orderBy('c.position')
    .compile();
  // `\d+` takes every digit: $12 is the twelfth value, never the first followed by 2.
  const inlined = query.sql.replace(/\$(\d+)/g, (_, n: string) => literal(query.parameters[Number(n) - 1]));
  return `copy (${inlined}) to stdout with (format csv, header true)`;
}

/**
 * Checks an export on its own, with nothing but its rows: each event's digest from its content, each link from
 * the one before it, and no position skipped between two rows that follow each other. A filtered export checks
 * row by row; a whole one, end to end.
 */
export function verifyExportedEvents(rows: Iterable<ExportedEvent>): {
  ok: boolean;
  checked: number;
  gaps: number;
  firstBroken: { position: string; reason: string } | null;
} {
  let checked = 0;
  let gaps = 0;
  let last: { position: bigint; hash: string } | null = null;
  for (const row of rows) {
    checked++;
    const position = BigInt(row.chain_position);
    const fail = (reason: string) => ({
      ok: false,
      checked,
      gaps,
      firstBroken: { position: row.chain_position, reason },
    });
    if (hashEvent(row) !== row.hash) return fail('the event does not match its hash (altered)');
    if (linkHash(row.chain_prev_hash, row.chain_position, String(row.seq), row.hash) !== row.chain_hash) {
      return fail('its link does not match its hash (altered)');
    }
    if (position === 1n && row.chain_prev_hash !== GENESIS_HASH)
      return fail('the first entry does not start at genesis');
    if (last && position === last.position + 1n && row.chain_prev_hash !== last.hash) {
      return fail('its prev_hash does not match the entry before it');
    }
    if (last && position !== last.position + 1n) gaps++;
    last = { position, hash: row.chain_hash };
  }
  return { ok: true, checked, gaps, firstBroken: null };
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
