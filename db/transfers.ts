import type { Kysely } from 'kysely';
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
