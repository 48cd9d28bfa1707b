import type { Kysely } from 'kysely';
import type { Database } from './schema';

/** The moment before which an Idempotency-Key has expired: kept `retentionHours`, then a new request. */
export function idempotencyExpiry(retentionHours: number, now = Date.now()): Date {
  return new Date(now - retentionHours * 3_600_000);
}

/** Deletes the keys past their retention; run on a timer by every API process (deleting twice is harmless). */
export async function purgeExpiredIdempotencyKeys(db: Kysely<Database>, retentionHours: number): Promise<number> {
  const result = await db
    .deleteFrom('idempotency_keys')
    .where('created_at', '<', idempotencyExpiry(retentionHours))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
