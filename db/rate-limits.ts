import { type Kysely, sql } from 'kysely';
import type { Database } from './schema';

/**
 * Counts one request against `key`'s window, in one upsert: a window older than `windowSeconds` starts afresh at
 * this request. The database's clock decides, so replicas with drifting clocks still share one window.
 */
export async function countRequest(
  db: Kysely<Database>,
  key: string,
  windowSeconds: number,
): Promise<{ count: number; resetsInSeconds: number }> {
  const window = sql`make_interval(secs => ${windowSeconds})`;
  const expired = sql<boolean>`rate_limit_windows.started_at <= now() - ${window}`;
  const row = await db
    .insertInto('rate_limit_windows')
    .values({ key, started_at: sql`now()`, count: 1 })
    .onConflict((oc) =>
      oc.column('key').doUpdateSet({
        started_at: sql`case when ${expired} then now() else rate_limit_windows.started_at end`,
        count: sql`case when ${expired} then 1 else rate_limit_windows.count + 1 end`,
      }),
    )
    .returning(['count', sql<number>`ceil(extract(epoch from started_at + ${window} - now()))::int`.as('resets_in')])
    .executeTakeFirstOrThrow();
  return { count: row.count, resetsInSeconds: Math.max(1, row.resets_in) };
}

/** Drops windows that ended more than `olderThanSeconds` ago; a key seen again starts a new one anyway. */
export async function purgeRateLimitWindows(db: Kysely<Database>, olderThanSeconds: number): Promise<number> {
  const result = await db
    .deleteFrom('rate_limit_windows')
    .where('started_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanSeconds})`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
