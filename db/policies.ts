import type { Kysely } from 'kysely';
import { DEFAULT_POLICY, type Policy } from '../domain/process';
import { DEFAULT_TIME_ZONE } from '../domain/time';
import type { Database } from './schema';

/** The agency's policy, or the defaults. */
export async function agencyPolicy(db: Kysely<Database>, agencyId: string): Promise<Policy> {
  const row = await db
    .selectFrom('agency_policies')
    .select('policy')
    .where('agency_id', '=', agencyId)
    .executeTakeFirst();
  return { ...DEFAULT_POLICY, ...(row?.policy ?? {}) };
}

/** The agency's IANA time zone: its dates are "today". */
export async function agencyTimeZone(db: Kysely<Database>, agencyId: string): Promise<string> {
  return (await agencyPolicy(db, agencyId)).timeZone ?? DEFAULT_TIME_ZONE;
}
