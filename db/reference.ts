import { type Kysely, sql } from 'kysely';
import type { ClientBody, ClinicianBody, ProviderBody } from '../api/schemas';
import type { Database } from './schema';

export type UpsertOutcome = 'inserted' | 'updated' | 'unchanged';
export type ReferenceKind = 'clients' | 'clinicians' | 'providers';

export const PRIMARY_KEYS = { clients: 'client_id', clinicians: 'clinician_id', providers: 'provider_id' } as const;

/** Clients and clinicians belong to an agency (the same id in two agencies is two records); providers are shared. */
export function agencyOwned(kind: ReferenceKind): boolean {
  return kind !== 'providers';
}

/** One reference record, looked up within the agency that owns it. */
export async function findReference(
  db: Kysely<Database>,
  kind: ReferenceKind,
  agencyId: string,
  id: string,
): Promise<Record<string, unknown> | undefined> {
  const dynamic = db as unknown as Kysely<any>;
  let query = dynamic.selectFrom(kind).selectAll().where(PRIMARY_KEYS[kind], '=', id);
  if (agencyOwned(kind)) query = query.where('agency_id', '=', agencyId);
  return query.executeTakeFirst();
}

/** A page of reference records of one agency, ordered by id. */
export async function listReferences(
  db: Kysely<Database>,
  kind: ReferenceKind,
  options: { agencyId: string; after?: string; limit: number; counselorId?: string },
): Promise<Record<string, unknown>[]> {
  const key = PRIMARY_KEYS[kind];
  const dynamic = db as unknown as Kysely<any>;
  let query = dynamic.selectFrom(kind).selectAll().orderBy(key).limit(options.limit);
  if (options.after) query = query.where(key, '>', options.after);
  if (agencyOwned(kind)) query = query.where('agency_id', '=', options.agencyId);
  if (options.counselorId && kind === 'clients') query = query.where('counselor_id', '=', options.counselorId);
  return query.execute();
}

/** A client row; the agency is the writer's, never the body's alone. */
export function clientRow(clientId: string, body: ClientBody & { agencyId: string }) {
  return {
    client_id: clientId,
    agency_id: body.agencyId,
    name: body.name,
    counselor_id: body.counselorId,
    active: body.active,
    risk_flags: JSON.stringify(body.riskFlags),
    contact: JSON.stringify(body.contact),
    has_sud_records: body.hasSubstanceUseRecords,
    needs: JSON.stringify([...body.needs].sort()),
  };
}

export function clinicianRow(clinicianId: string, body: ClinicianBody & { agencyId: string }) {
  return {
    clinician_id: clinicianId,
    agency_id: body.agencyId,
    name: body.name,
    capacity: body.capacity,
    specialties: JSON.stringify([...body.specialties].sort()),
    active: body.active,
    contact: body.contact,
  };
}

export function providerRow(providerId: string, body: ProviderBody) {
  return {
    provider_id: providerId,
    name: body.name,
    contact: body.contact,
    specialties: JSON.stringify([...body.specialties].sort()),
  };
}

/**
 * Inserts or updates one reference row, and says which: a row that is already the same is left alone,
 * so importing a file twice changes nothing.
 */
export async function upsertReference(
  db: Kysely<Database>,
  kind: ReferenceKind,
  row: Record<string, string | number | boolean>,
): Promise<UpsertOutcome> {
  const key = PRIMARY_KEYS[kind];
  // The conflict target includes the agency: a row of another agency with the same id is another record.
  const target = agencyOwned(kind) ? ['agency_id', key] : [key];
  const columns = Object.keys(row).filter((c) => !target.includes(c));
  const dynamic = db as unknown as Kysely<any>;
  const result = await dynamic
    .insertInto(kind)
    .values(row)
    .onConflict((oc) =>
      oc
        .columns(target)
        .doUpdateSet({
          ...Object.fromEntries(columns.map((c) => [c, sql.ref(`excluded.${c}`)])),
          updated_at: sql`now()`,
        })
        .where(
          sql<boolean>`(${sql.join(columns.map((c) => sql.ref(`${kind}.${c}`)))}) is distinct from (${sql.join(columns.map((c) => sql.ref(`excluded.${c}`)))})`,
        ),
    )
    .returning(sql<boolean>`xmax = 0`.as('inserted'))
    .executeTakeFirst();
  if (!result) return 'unchanged';
  return result.inserted ? 'inserted' : 'updated';
}
