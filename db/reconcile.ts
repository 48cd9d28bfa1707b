import { type Kysely, sql } from 'kysely';
import type { Database } from './schema';

/** At most this many rows of one kind of drift are read; past that, the count is what matters. */
const DRIFT_LIST_CAP = 1000;

export interface CaseRowKey {
  case_id: string;
  agency_id: string;
  status: string;
  workflow_id: string;
  created_at: Date;
  updated_at: Date;
}

/** The case rows after `afterCaseId`, a page at a time, with what the reconcile compares (no facts). */
export async function caseRowPage(db: Kysely<Database>, afterCaseId: string | null, limit: number) {
  let query = db
    .selectFrom('cases')
    .select(['case_id', 'agency_id', 'status', 'workflow_id', 'created_at', 'updated_at'])
    .orderBy('case_id')
    .limit(limit);
  if (afterCaseId) query = query.where('case_id', '>', afterCaseId);
  return (await query.execute()) as CaseRowKey[];
}

export async function caseRowByWorkflowId(db: Kysely<Database>, workflowId: string) {
  return db
    .selectFrom('cases')
    .select(['case_id', 'agency_id', 'status'])
    .where('workflow_id', '=', workflowId)
    .executeTakeFirst();
}

/** The agency an id belongs to by the audit trail, when its row is gone (a case id is unique across agencies). */
export async function agencyOfCaseByAudit(db: Kysely<Database>, caseId: string): Promise<string | null> {
  const row = await db
    .selectFrom('audit_events')
    .select('agency_id')
    .where('case_id', '=', caseId)
    .where('agency_id', 'is not', null)
    .orderBy('seq')
    .limit(1)
    .executeTakeFirst();
  return row?.agency_id ?? null;
}

/** Clients with more than one opening/open case in one agency (the unique index should make this impossible). */
export async function clientsWithOpenCases(db: Kysely<Database>) {
  const { rows } = await sql<{ agency_id: string; client_id: string; n: string; case_ids: string[] }>`
    select agency_id, client_id, count(*) as n, array_agg(case_id::text order by case_id) as case_ids
    from cases where status in ('opening', 'open')
    group by agency_id, client_id having count(*) > 1
    order by agency_id, client_id limit ${DRIFT_LIST_CAP}`.execute(db);
  return rows.map((r) => ({ ...r, n: Number(r.n) }));
}

/**
 * Every transfer's counts against its rows: `opened` is the number of proposals, each proposal has its case,
 * and each case of the transfer has its proposal. A transfer still opening pages is left alone until it has
 * been quiet for `settledBefore`.
 */
export async function transferCounts(db: Kysely<Database>, settledBefore: Date) {
  const { rows } = await sql<{
    transfer_id: string;
    agency_id: string;
    status: string;
    expected: number;
    opened: number;
    proposed: string;
    cases: string;
    proposals_without_case: string;
    cases_without_proposal: string;
  }>`
    select t.transfer_id, t.agency_id, t.status, t.expected, t.opened,
      (select count(*) from proposals p where p.transfer_id = t.transfer_id) as proposed,
      (select count(*) from cases c where c.transfer_id = t.transfer_id::text) as cases,
      (select count(*) from proposals p where p.transfer_id = t.transfer_id
        and not exists (select 1 from cases c where c.case_id = p.case_id)) as proposals_without_case,
      (select count(*) from cases c where c.transfer_id = t.transfer_id::text
        and not exists (select 1 from proposals p where p.case_id = c.case_id)) as cases_without_proposal
    from transfers t
    where t.status <> 'opening' or t.updated_at < ${settledBefore}
    order by t.transfer_id`.execute(db);
  return rows.map((r) => ({
    transferId: r.transfer_id,
    agencyId: r.agency_id,
    status: r.status,
    expected: r.expected,
    opened: r.opened,
    proposed: Number(r.proposed),
    cases: Number(r.cases),
    proposalsWithoutCase: Number(r.proposals_without_case),
    casesWithoutProposal: Number(r.cases_without_proposal),
  }));
}

/** Event keys recorded more than once (the unique index should make this impossible). */
export async function duplicatedAuditEvents(db: Kysely<Database>) {
  const { rows } = await sql<{ event_key: string; agency_id: string | null; n: string; seqs: string[] }>`
    select event_key, min(agency_id) as agency_id, count(*) as n, array_agg(seq::text order by seq) as seqs
    from audit_events group by event_key having count(*) > 1
    order by min(seq) limit ${DRIFT_LIST_CAP}`.execute(db);
  return rows.map((r) => ({ ...r, n: Number(r.n) }));
}

/** Messages neither delivered nor settled otherwise (dead, withheld, batched) that were queued before `before`. */
export async function undeliveredMessages(db: Kysely<Database>, before: Date) {
  return db
    .selectFrom('outbox')
    .select(['message_key', 'agency_id', 'case_id', 'kind', 'status', 'attempts', 'created_at'])
    .where('status', 'in', ['pending', 'sending'])
    .where('created_at', '<', before)
    .orderBy('created_at')
    .limit(DRIFT_LIST_CAP)
    .execute();
}
