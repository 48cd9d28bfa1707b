import { type Kysely, sql } from 'kysely';
import type { Database } from './schema';

/** A transfer of one agency; another agency's is not found. */
export async function findTransfer(db: Kysely<Database>, agencyId: string, transferId: string) {
  return db
    .selectFrom('transfers')
    .selectAll()
    .where('agency_id', '=', agencyId)
    .where('transfer_id', '=', transferId)
    .executeTakeFirst();
}

export async function findClinician(db: Kysely<Database>, agencyId: string, clinicianId: string) {
  return db
    .selectFrom('clinicians')
    .selectAll()
    .where('agency_id', '=', agencyId)
    .where('clinician_id', '=', clinicianId)
    .executeTakeFirst();
}

/** The listed clients that are not on the counselor's active caseload. */
export async function caseloadStrangers(
  db: Kysely<Database>,
  agencyId: string,
  counselorId: string,
  clientIds: string[],
): Promise<string[]> {
  const onCaseload = await db
    .selectFrom('clients')
    .select('client_id')
    .where('agency_id', '=', agencyId)
    .where('client_id', 'in', clientIds)
    .where('counselor_id', '=', counselorId)
    .where('active', '=', true)
    .execute();
  const found = new Set(onCaseload.map((c) => c.client_id));
  return clientIds.filter((id) => !found.has(id));
}

/** How many active clients the counselor has. */
export async function caseloadSize(db: Kysely<Database>, agencyId: string, counselorId: string): Promise<number> {
  const row = await db
    .selectFrom('clients')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('agency_id', '=', agencyId)
    .where('counselor_id', '=', counselorId)
    .where('active', '=', true)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function openTransferOf(db: Kysely<Database>, agencyId: string, counselorId: string) {
  return db
    .selectFrom('transfers')
    .select('transfer_id')
    .where('agency_id', '=', agencyId)
    .where('counselor_id', '=', counselorId)
    .where('status', 'in', ['opening', 'open'])
    .executeTakeFirst();
}

/** A case's proposal within a transfer of this agency. */
export async function findProposal(db: Kysely<Database>, agencyId: string, transferId: string, caseId: string) {
  return db
    .selectFrom('proposals as p')
    .innerJoin('transfers as t', 't.transfer_id', 'p.transfer_id')
    .selectAll('p')
    .select('t.counselor_id as departing_counselor_id')
    .where('t.agency_id', '=', agencyId)
    .where('p.transfer_id', '=', transferId)
    .where('p.case_id', '=', caseId)
    .executeTakeFirst();
}

/** Where every case of a transfer stands, from the read model: counts and capped lists of ids. */
export async function transferProgress(
  db: Kysely<Database>,
  agencyId: string,
  transferId: string,
  options: { today: string; listCap: number; stuckAfterDays: number },
) {
  const ids = (where: ReturnType<typeof sql>) =>
    sql<{
      case_id: string;
    }>`select case_id from cases where agency_id = ${agencyId} and transfer_id = ${transferId} and ${where} order by case_id limit ${options.listCap}`
      .execute(db)
      .then((r) => r.rows.map((x) => x.case_id));
  const [bySteps, informed, atRisk, escalated, stuck, unmatched] = await Promise.all([
    sql<{
      status: string;
      step: string;
      n: string;
    }>`select status, step, count(*) as n from cases where agency_id = ${agencyId} and transfer_id = ${transferId} group by status, step`.execute(
      db,
    ),
    sql<{
      informed: string | null;
      n: string;
    }>`select state->'conversation'->>'informedInTime' as informed, count(*) as n from cases where agency_id = ${agencyId} and transfer_id = ${transferId} group by 1`.execute(
      db,
    ),
    ids(
      sql`status = 'open' and step in ('decision_review', 'client_conversation') and notice_due <= ${options.today}::date + coalesce((state->'policy'->>'noticeWarningDays')::int, 3)`,
    ),
    ids(sql`status = 'open' and jsonb_array_length(coalesce(state->'escalations', '[]'::jsonb)) > 0`),
    ids(sql`status = 'open' and updated_at < now() - make_interval(days => ${options.stuckAfterDays})`),
    sql<{
      case_id: string;
    }>`select p.case_id from proposals p where p.transfer_id = ${transferId} and exists (select 1 from transfers t where t.transfer_id = p.transfer_id and t.agency_id = ${agencyId}) and p.clinician_id is null order by p.case_id limit ${options.listCap}`
      .execute(db)
      .then((r) => r.rows.map((x) => x.case_id)),
  ]);
  return { bySteps, informed, atRisk, escalated, stuck, unmatched };
}
