import { type Kysely, sql } from 'kysely';
import type { CaseStatus } from '../domain/case';
import type { Database, TransferStatus } from './schema';

/** The sort key of a case list: due soonest, nothing due last (the indexes are on this expression), then the id. */
const dueKey = sql<Date>`coalesce(cases.due_at, 'infinity'::timestamptz)`;

/** Where the previous page ended: its last row's sort key. `dueKey` is an ISO instant or `infinity`. */
export interface CaseCursor {
  dueKey: string;
  caseId: string;
}

export interface CaseListFilter {
  agencyId: string;
  status?: CaseStatus;
  step?: string;
  counselorId?: string;
  clientId?: string;
  transferId?: string;
  kind?: string;
  escalated?: boolean;
  blockedBy?: string;
  dueBeforeMs?: number;
  after?: CaseCursor;
  limit: number;
}

/** One page of an agency's cases, due soonest first; only the columns a list shows (and the state for blockers). */
export async function listCases(db: Kysely<Database>, f: CaseListFilter) {
  return caseListQuery(db, f).execute();
}

/** The query of `listCases`, unexecuted (a test EXPLAINs it). */
export function caseListQuery(db: Kysely<Database>, f: CaseListFilter) {
  let query = db
    .selectFrom('cases')
    .select([
      'case_id',
      'client_id',
      'counselor_id',
      'transfer_id',
      'kind',
      'reason',
      'status',
      'step',
      'due_at',
      'notice_due',
      'last_day',
      'escalated',
      'state',
    ])
    // The key as text, to the microsecond: a JavaScript Date would round it and the cursor could skip a row.
    .select(sql<string>`coalesce(to_json(cases.due_at) #>> '{}', 'infinity')`.as('due_key'))
    .where('agency_id', '=', f.agencyId);
  if (f.status) query = query.where('status', '=', f.status);
  if (f.step) query = query.where('step', '=', f.step);
  if (f.counselorId) query = query.where('counselor_id', '=', f.counselorId);
  if (f.clientId) query = query.where('client_id', '=', f.clientId);
  if (f.transferId) query = query.where('transfer_id', '=', f.transferId);
  if (f.kind) query = query.where('kind', '=', f.kind as never);
  if (f.escalated !== undefined) query = query.where('escalated', '=', f.escalated);
  if (f.blockedBy) query = query.where(sql<boolean>`cases.blocker_rules @> array[${f.blockedBy}]::text[]`);
  if (f.dueBeforeMs !== undefined) query = query.where('due_at', '<', new Date(f.dueBeforeMs));
  if (f.after) {
    // A row comparison on the index's own key: the page starts inside the index, however deep.
    query = query.where(
      sql<boolean>`(${dueKey}, cases.case_id) > (${f.after.dueKey}::timestamptz, ${f.after.caseId}::uuid)`,
    );
  }
  return query.orderBy(dueKey).orderBy('case_id').limit(f.limit);
}

export interface TransferListFilter {
  agencyId: string;
  /** Finished, cancelled or failed transfers count when they changed at or after this instant. */
  endedSince: Date;
  after?: { lastDay: string; transferId: string };
  limit: number;
}

const OPEN_TRANSFER: TransferStatus[] = ['opening', 'open'];

/** One page of an agency's open transfers and recently ended ones, by last day soonest, then id. */
export async function listTransfers(db: Kysely<Database>, f: TransferListFilter) {
  let query = db
    .selectFrom('transfers')
    .select([
      'transfer_id',
      'counselor_id',
      'last_day',
      'status',
      'expected',
      'opened',
      'reason',
      'created_at',
      'updated_at',
    ])
    .where('agency_id', '=', f.agencyId)
    .where((eb) => eb.or([eb('status', 'in', OPEN_TRANSFER), eb('updated_at', '>=', f.endedSince)]));
  if (f.after) {
    query = query.where(
      sql<boolean>`(transfers.last_day, transfers.transfer_id) > (${f.after.lastDay}::date, ${f.after.transferId}::uuid)`,
    );
  }
  return query.orderBy('transfers.last_day').orderBy('transfer_id').limit(f.limit).execute();
}

/** How many cases each of the transfers has, by status: one GROUP BY for the whole page. */
export async function transferCaseCounts(
  db: Kysely<Database>,
  agencyId: string,
  transferIds: string[],
): Promise<Map<string, Record<string, number>>> {
  const counts = new Map<string, Record<string, number>>(transferIds.map((id) => [id, {}]));
  if (transferIds.length === 0) return counts;
  const rows = await db
    .selectFrom('cases')
    .select(['transfer_id', 'status', (eb) => eb.fn.countAll<string>().as('n')])
    .where('agency_id', '=', agencyId)
    .where('transfer_id', 'in', transferIds)
    .groupBy(['transfer_id', 'status'])
    .execute();
  for (const row of rows) counts.get(row.transfer_id!)![row.status] = Number(row.n);
  return counts;
}
