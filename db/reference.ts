import { type Kysely, sql } from 'kysely';
import type { ClientBody, ClinicianBody, ProviderBody } from '../api/schemas';
import type { Database } from './schema';

export type UpsertOutcome = 'inserted' | 'updated' | 'unchanged';
export type ReferenceKind = 'clients' | 'clinicians' | 'providers';

export const PRIMARY_KEYS = { clients: 'client_id', clinicians: 'clinician_id', providers: 'provider_id' } as const;

export function clientRow(clientId: string, body: ClientBody) {
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

export function clinicianRow(clinicianId: string, body: ClinicianBody) {
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
  const columns = Object.keys(row).filter((c) => c !== key);
  const dynamic = db as unknown as Kysely<any>;
  const result = await dynamic
    .insertInto(kind)
    .values(row)
    .onConflict((oc) =>
      oc
        .column(key)
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
