import type { Readable } from 'node:stream';
import { Kysely, PostgresDialect } from 'kysely';
import { Pool, types } from 'pg';
import { to as copyTo } from 'pg-copy-streams';

// SQL dates stay ISO date strings: a calendar date has no time zone to shift it.
types.setTypeParser(types.builtins.DATE, (value) => value);
import type { Database } from './schema';

export type Db = Kysely<Database>;

export interface DatabaseHandle {
  db: Db;
  /** True when a query reached the server just now. */
  ping: () => Promise<boolean>;
  close: () => Promise<void>;
  copyOut: CopyOut;
}

/**
 * Streams `COPY (<query>) TO STDOUT …` from a connection of its own, which goes back to the pool when the stream
 * ends; a stream destroyed half way (a client that went away) takes its connection with it, since the server is
 * still sending. COPY takes no parameters: the query's values are already literals (see `literal` in db/audit.ts).
 */
export type CopyOut = (copy: string) => Promise<Readable>;

function copyOutOf(pool: Pool): CopyOut {
  return async (copy) => {
    const client = await pool.connect();
    try {
      const stream = client.query(copyTo(copy));
      let failure: Error | undefined;
      stream.once('error', (error) => (failure = error));
      // 'close' comes last, whether the stream ended, failed or was destroyed half way.
      stream.once('close', () =>
        client.release(stream.readableEnded ? undefined : (failure ?? new Error('the COPY stream was cut'))),
      );
      return stream;
    } catch (error) {
      client.release(error as Error);
      throw error;
    }
  };
}

/** Opens a pool; a dropped connection is reported, never fatal (the pool reconnects on the next query). */
export function openDatabase(
  connectionString: string,
  options: { poolSize?: number; onPoolError?: (error: Error) => void } = {},
): DatabaseHandle {
  const pool = new Pool({
    connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
  });
  // An idle connection's loss reaches the pool; a checked-out one's reaches its client, which, with no listener,
  // would throw out of the event loop and end the process. Its query or transaction fails instead.
  pool.on('error', (error) => options.onPoolError?.(error));
  pool.on('connect', (client) => client.on('error', (error) => options.onPoolError?.(error)));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    async ping() {
      try {
        await pool.query('select 1');
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      await db.destroy();
    },
    copyOut: copyOutOf(pool),
  };
}
