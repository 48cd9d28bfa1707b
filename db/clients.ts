import type { Kysely, Selectable } from 'kysely';
import type { ClientFacts, Policy, RiskFlag } from '../domain/process';
import { withDefaults } from './policies';
import type { ClientsTable, Database } from './schema';

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
  return row && recordFacts(row);
}

type FactColumns = Pick<
  Selectable<ClientsTable>,
  'name' | 'counselor_id' | 'risk_flags' | 'contact' | 'has_sud_records'
>;

function recordFacts(row: FactColumns): ClientFacts & { name: string } {
  return {
    name: row.name,
    counselorId: row.counselor_id,
    riskFlags: row.risk_flags,
    contact: row.contact,
    hasSubstanceUseRecords: row.has_sud_records,
  };
}

/**
 * What a case opens from, in one read: the client's safety facts from the record and the agency's policy (or the
 * defaults); undefined when the agency has no such client.
 */
export async function openingRecord(
  db: Kysely<Database>,
  agencyId: string,
  clientId: string,
): Promise<{ client: ClientFacts & { name: string }; policy: Policy } | undefined> {
  const row = await db
    .selectFrom('clients as c')
    .leftJoin('agency_policies as p', 'p.agency_id', 'c.agency_id')
    .select(['c.name', 'c.counselor_id', 'c.risk_flags', 'c.contact', 'c.has_sud_records', 'p.policy'])
    .where('c.agency_id', '=', agencyId)
    .where('c.client_id', '=', clientId)
    .executeTakeFirst();
  return row && { client: recordFacts(row), policy: withDefaults(row.policy ?? undefined) };
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
