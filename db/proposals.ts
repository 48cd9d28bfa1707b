import { type Kysely, sql } from 'kysely';
import type { Database } from './schema';

export interface ReceiverLoad {
  clinicianId: string;
  capacity: number;
  /** Active clients now, plus clients proposed to them by open transfers. */
  load: number;
  specialties: string[];
}

/** Serializes proposal changes within an agency, so no two of them overbook one receiver. */
export async function lockProposals(trx: Kysely<Database>, agencyId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${`proposals:${agencyId}`}))`.execute(trx);
}

/** The agency's active clinicians who could receive clients, with how full they are. */
export async function receiverLoads(
  db: Kysely<Database>,
  agencyId: string,
  options: { exceptClinicianId: string; onlyClinicianId?: string },
): Promise<ReceiverLoad[]> {
  let query = db
    .selectFrom('clinicians as c')
    .select(['c.clinician_id', 'c.capacity', 'c.specialties'])
    .select((eb) => [
      eb
        .selectFrom('clients as cl')
        .select((e) => e.fn.countAll<string>().as('n'))
        .whereRef('cl.agency_id', '=', 'c.agency_id')
        .whereRef('cl.counselor_id', '=', 'c.clinician_id')
        .where('cl.active', '=', true)
        .as('caseload'),
      eb
        .selectFrom('proposals as p')
        .innerJoin('transfers as t', 't.transfer_id', 'p.transfer_id')
        .select((e) => e.fn.countAll<string>().as('n'))
        .whereRef('t.agency_id', '=', 'c.agency_id')
        .whereRef('p.clinician_id', '=', 'c.clinician_id')
        .where('t.status', 'in', ['opening', 'open'])
        .as('proposed'),
    ])
    .where('c.agency_id', '=', agencyId)
    .where('c.active', '=', true)
    .where('c.clinician_id', '!=', options.exceptClinicianId);
  if (options.onlyClinicianId) query = query.where('c.clinician_id', '=', options.onlyClinicianId);
  const rows = await query.execute();
  return rows.map((r) => ({
    clinicianId: r.clinician_id,
    capacity: r.capacity,
    load: Number(r.caseload ?? 0) + Number(r.proposed ?? 0),
    specialties: r.specialties,
  }));
}
