import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Database } from './schema';

export interface RequestCount {
  count: number;
  resetsInSeconds: number;
}

/**
 * Every request of an address or a token updates the same row, so each waits for the one before it to commit. A
 * count commits without waiting for its WAL to reach disk (`synchronous_commit` off for its statement's own
 * transaction only): a crash can forget the last few counts of a one-minute window, which costs nothing, and the
 * row is free again as soon as the update is done rather than after an fsync. A statement that counts selects
 * from this.
 */
export const RELAXED = sql`(select set_config('synchronous_commit', 'off', true)) as relaxed`;

/**
 * An upsert of the (key, now(), 1) rows `source` selects into their windows: a window older than `windowSeconds`
 * starts afresh at this request. The database's clock decides, so replicas with drifting clocks share one window.
 * Returns each row's count and the seconds until its window resets.
 */
export function countingUpsert(
  source: RawBuilder<unknown>,
  windowSeconds: number,
): RawBuilder<{ count: number; resets_in: number }> {
  const window = sql`make_interval(secs => ${windowSeconds})`;
  const expired = sql<boolean>`rate_limit_windows.started_at <= now() - ${window}`;
  return sql<{ count: number; resets_in: number }>`
    insert into rate_limit_windows (key, started_at, count) ${source}
    on conflict (key) do update set
      started_at = case when ${expired} then now() else rate_limit_windows.started_at end,
      count = case when ${expired} then 1 else rate_limit_windows.count + 1 end
    returning count, ceil(extract(epoch from started_at + ${window} - now()))::int as resets_in`;
}

/** Counts one request against `key`'s window, in one upsert. */
export async function countRequest(db: Kysely<Database>, key: string, windowSeconds: number): Promise<RequestCount> {
  const { rows } = await countingUpsert(sql`select ${key}, now(), 1 from ${RELAXED}`, windowSeconds).execute(db);
  return requestCount(rows[0]!.count, rows[0]!.resets_in);
}

/** A window's count and the seconds until it resets (at least one, for Retry-After). */
export function requestCount(count: number, resetsIn: number): RequestCount {
  return { count, resetsInSeconds: Math.max(1, resetsIn) };
}

/** Drops windows that ended more than `olderThanSeconds` ago; a key seen again starts a new one anyway. */
export async function purgeRateLimitWindows(db: Kysely<Database>, olderThanSeconds: number): Promise<number> {
  const result = await db
    .deleteFrom('rate_limit_windows')
    .where('started_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanSeconds})`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
