import type { Kysely } from 'kysely';
import { DEFAULT_POLICY, type Policy } from '../domain/process';
import { DEFAULT_TIME_ZONE } from '../domain/time';
import type { Database } from './schema';

/** A stored policy over the defaults (every field the agency did not set is the default). */
export function withDefaults(policy: Partial<Policy> | undefined): Policy {
  return { ...DEFAULT_POLICY, ...(policy ?? {}) };
}

/** The agency's policy, or the defaults. */
export async function agencyPolicy(db: Kysely<Database>, agencyId: string): Promise<Policy> {
  return withDefaults((await findAgencyPolicy(db, agencyId))?.policy);
}

/** The agency's IANA time zone: its dates are "today". */
export async function agencyTimeZone(db: Kysely<Database>, agencyId: string): Promise<string> {
  return (await agencyPolicy(db, agencyId)).timeZone ?? DEFAULT_TIME_ZONE;
}

/** The agency's name, phone and policy as set (null when never set). */
export async function findAgencyPolicy(db: Kysely<Database>, agencyId: string) {
  return db.selectFrom('agency_policies').selectAll().where('agency_id', '=', agencyId).executeTakeFirst();
}

/** Sets the agency's name, phone and policy. */
export async function setAgencyPolicy(
  db: Kysely<Database>,
  agencyId: string,
  values: { agencyName: string; agencyPhone: string; policy: Policy; updatedBy: string },
): Promise<void> {
  const row = {
    agency_name: values.agencyName,
    agency_phone: values.agencyPhone,
    policy: JSON.stringify(values.policy),
    updated_by: values.updatedBy,
    updated_at: new Date(),
  };
  await db
    .insertInto('agency_policies')
    .values({ agency_id: agencyId, ...row })
    .onConflict((oc) => oc.column('agency_id').doUpdateSet(row))
    .execute();
}
