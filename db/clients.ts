import type { Kysely } from 'kysely';
import type { ClientFacts, RiskFlag } from '../domain/process';
import type { Database } from './schema';

/** One client of one agency; another agency's client of the same id is not found. */
export async function findClient(db: Kysely<Database>, agencyId: string, clientId: string) {
  return db
    .selectFrom('clients')
    .selectAll()
    .where('agency_id', '=', agencyId)
    .where('client_id', '=', clientId)
    .executeTakeFirst();
}

/** The client's safety facts from the record, or undefined when the agency has no such client. */
export async function clientFacts(
  db: Kysely<Database>,
  agencyId: string,
  clientId: string,
): Promise<(ClientFacts & { name: string }) | undefined> {
  const row = await findClient(db, agencyId, clientId);
  if (!row) return undefined;
  return {
    name: row.name,
    counselorId: row.counselor_id,
    riskFlags: row.risk_flags,
    contact: row.contact,
    hasSubstanceUseRecords: row.has_sud_records,
  };
}

/** The client's cases that are opening or open in this agency (at most one, by the unique index). */
export async function openCasesOfClients(db: Kysely<Database>, agencyId: string, clientIds: string[]) {
  if (clientIds.length === 0) return [];
  return db
    .selectFrom('cases')
    .select(['case_id', 'client_id', 'status'])
    .where('agency_id', '=', agencyId)
    .where('client_id', 'in', clientIds)
    .where('status', 'in', ['opening', 'open'])
    .execute();
}

/** Adds a risk flag to the client record (under a row lock); answers the flags before, or null if nothing changed. */
export async function addRiskFlag(
  db: Kysely<Database>,
  agencyId: string,
  clientId: string,
  flag: RiskFlag,
): Promise<RiskFlag[] | null> {
  const before = await db
    .selectFrom('clients')
    .select('risk_flags')
    .where('agency_id', '=', agencyId)
    .where('client_id', '=', clientId)
    .forUpdate()
    .executeTakeFirst();
  if (!before || before.risk_flags.includes(flag)) return null;
  await db
    .updateTable('clients')
    .set({ risk_flags: JSON.stringify([...before.risk_flags, flag]), updated_at: new Date() })
    .where('agency_id', '=', agencyId)
    .where('client_id', '=', clientId)
    .execute();
  return before.risk_flags;
}
