import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sql } from 'kysely';
import pino from 'pino';
import { createApp } from '../api/app';
import { GENESIS_HASH, hashEvent } from '../db/audit';
import { openDatabase } from '../db/database';
import { migrateToLatest } from '../db/migrate';
import type { AuditEventRow } from '../db/schema';
import { createToken, upsertUser } from '../db/users';
import { freePort, startEmbeddedPostgres } from '../scripts/dev-services';
import { openTemporalClient } from '../temporal';
import { testDataConverter } from '../tests/support/payload-keys';

/**
 * `npm run bench:audit [events]`: exports N audit events (default 1,000,000) through GET /v1/audit as NDJSON
 * and as CSV, against a bare baseline in the same run (the same keyset batches read and dropped, no
 * serialization, no HTTP), and reports time, the ratio, and how far memory grew above where it started.
 */
const EVENTS = Number(process.argv[2] ?? 1_000_000);
const DIR = resolve(__dirname, '..', '.data', 'bench-audit');

async function main(): Promise<void> {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const pg = await startEmbeddedPostgres({ dataDir: join(DIR, 'postgres'), port: await freePort(), database: 'bench' });
  const database = openDatabase(pg.url, { poolSize: 4 });
  const dataConverter = testDataConverter();
  const temporal = openTemporalClient({ address: '127.0.0.1:1' }, 'default', { dataConverter });
  try {
    await migrateToLatest(database.db);
    const t0 = performance.now();
    let previous = GENESIS_HASH;
    const base = Date.now() - EVENTS * 1000;
    for (let start = 1; start <= EVENTS; start += 20_000) {
      const rows: AuditEventRow[] = [];
      for (let seq = start; seq < Math.min(start + 20_000, EVENTS + 1); seq++) {
        const row = {
          seq: String(seq),
          event_key: `bench:${seq}`,
          occurred_at: new Date(base + seq * 1000),
          actor_id: `user-${seq % 50}`,
          actor_role: 'staff',
          action: seq % 3 ? 'case.viewed.details' : 'referral.sent',
          case_id: null,
          client_id: `client-${seq % 5000}`,
          outcome: 'done',
          outcome_reason: null,
          request_id: `req-${seq}`,
          source_address: '127.0.0.1',
          workflow_id: null,
          activity_id: null,
          before: null,
          after: { n: seq, note: 'x'.repeat(40) },
          prev_hash: previous,
        } as Omit<AuditEventRow, 'hash'>;
        const hash = hashEvent(row);
        rows.push({ ...row, hash });
        previous = hash;
      }
      const col = <K extends keyof AuditEventRow>(k: K) => rows.map((r) => r[k]);
      await sql`insert into audit_events (seq, event_key, occurred_at, actor_id, actor_role, action, client_id, outcome, request_id, source_address, after, prev_hash, hash)
        select * from unnest(${col('seq')}::bigint[], ${col('event_key')}::text[], ${col('occurred_at')}::timestamptz[], ${col('actor_id')}::text[],
          ${col('actor_role')}::text[], ${col('action')}::text[], ${col('client_id')}::text[], ${col('outcome')}::text[], ${col('request_id')}::text[],
          ${col('source_address')}::text[], ${rows.map((r) => JSON.stringify(r.after))}::jsonb[], ${col('prev_hash')}::text[], ${col('hash')}::text[])`.execute(
        database.db,
      );
    }
    const loadSeconds = (performance.now() - t0) / 1000;

    await upsertUser(database.db, { id: 'compliance-1', role: 'compliance', agencyId: 'bench', name: 'bench' });
    const { token } = await createToken(database.db, { agencyId: 'bench', userId: 'compliance-1' });
    const app = createApp({
      db: database.db,
      temporal: temporal.client,
      taskQueue: 'none',
      logger: pino({ level: 'silent' }),
      health: { postgres: database.ping, temporal: temporal.ping },
      rateLimitPerMinute: 1000,
      payloadCodec: dataConverter.payloadCodecs[0],
    });
    const server = app.listen(0);
    const port = (server.address() as { port: number }).port;

    const measure = async (run: () => Promise<number>) => {
      global.gc?.();
      const startRss = process.memoryUsage().rss;
      let peak = startRss;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
      const t = performance.now();
      const units = await run();
      clearInterval(sampler);
      return { seconds: (performance.now() - t) / 1000, units, rssGrowthMiB: Math.round((peak - startRss) / 2 ** 20) };
    };

    const bare = await measure(async () => {
      let after = '0';
      let n = 0;
      for (;;) {
        const rows = await database.db
          .selectFrom('audit_events')
          .selectAll()
          .where('seq', '>', after)
          .orderBy('seq')
          .limit(1000)
          .execute();
        if (rows.length === 0) return n;
        n += rows.length;
        after = rows.at(-1)!.seq;
      }
    });
    const exportAs = (format: string) =>
      measure(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/v1/audit?format=${format}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        const reader = res.body!.getReader();
        let lines = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return lines - 1;
          for (const byte of value) if (byte === 10) lines++;
        }
      });
    const ndjson = await exportAs('ndjson');
    const csv = await exportAs('csv');
    server.close();
    process.stdout.write(
      `${JSON.stringify(
        {
          events: EVENTS,
          loadSeconds: +loadSeconds.toFixed(1),
          bareKeysetReadSeconds: +bare.seconds.toFixed(1),
          bareRssGrowthMiB: bare.rssGrowthMiB,
          ndjson: {
            seconds: +ndjson.seconds.toFixed(1),
            rows: ndjson.units,
            ratioToBare: +(ndjson.seconds / bare.seconds).toFixed(2),
            rssGrowthMiB: ndjson.rssGrowthMiB,
          },
          csv: {
            seconds: +csv.seconds.toFixed(1),
            rows: csv.units,
            ratioToBare: +(csv.seconds / bare.seconds).toFixed(2),
            rssGrowthMiB: csv.rssGrowthMiB,
          },
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await database.close();
    await temporal.close();
    await pg.stop();
  }
}

void main();
