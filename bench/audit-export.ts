import { spawn } from 'node:child_process';
import { sql } from 'kysely';
import { escapeLiteral } from 'pg';
import { appendAuditEvent, integrateAuditChains } from '../db/audit';
import type { Db } from '../db/database';
import { tokenFor } from '../tests/support/stack';
import { type Benchmark, type RunResult, secondsSince } from './benchmark';
import { type Services, stopAfter } from './services';

const AGENCY = 'bench-export';
/** The route compliance staff export with, as a CSV. */
const EXPORT_PATH = '/v1/audit?format=csv';
const TEMPLATE_EVENTS = 1000;

/** Lines and bytes of a stream, read to its end. */
async function countLines(stream: AsyncIterable<Uint8Array>): Promise<{ lines: number; bytes: number }> {
  let lines = 0;
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += chunk.length;
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
  }
  return { lines, bytes };
}

/**
 * `events` audit events of one agency, fast. The first thousand are appended by appendAuditEvent, so they have
 * whatever shape the audit code gives a row; the rest are copies made in SQL by the schema's owner, each column
 * copied except those a unique index covers, which are moved out of the way (numbers past the largest, text with a
 * suffix), and entered in the agency's chain after the appended ones with placeholder hashes, which the export does
 * not check (it reads the agency's chain). Returns how many the agency holds.
 */
async function seedEvents(services: Services, events: number): Promise<number> {
  const template = Math.min(TEMPLATE_EVENTS, events);
  await services.db.transaction().execute(async (trx) => {
    for (let n = 0; n < template; n++) {
      await appendAuditEvent(trx, {
        eventKey: `bench-export:${n}`,
        agencyId: AGENCY,
        actor: { id: `user-${n % 50}`, role: 'staff' },
        action: n % 3 ? 'case.viewed.details' : 'referral.sent',
        clientId: `client-${n % 5000}`,
        outcome: 'done',
        requestId: `req-${n}`,
        sourceAddress: '127.0.0.1',
        after: { n, note: 'x'.repeat(40) },
      });
    }
  });
  await integrateAuditChains(services.db, { chains: [AGENCY] });
  const copies = Math.ceil(events / template) - 1;
  if (copies > 0) await copyTemplate(services.owner, copies);
  await sql`analyze audit_events`.execute(services.owner);
  const { n } = await services.db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('agency_id', '=', AGENCY)
    .executeTakeFirstOrThrow();
  return Number(n);
}

async function copyTemplate(owner: Db, copies: number): Promise<void> {
  const { rows: columns } = await sql<{ name: string; type: string; identity: string; unique: boolean }>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attidentity as identity,
           exists (select 1 from pg_index i where i.indrelid = a.attrelid and i.indisunique
                    and a.attnum = any (i.indkey)) as unique
      from pg_attribute a
     where a.attrelid = 'audit_events'::regclass and a.attnum > 0 and not a.attisdropped
     order by a.attnum`.execute(owner);
  const names: string[] = [];
  const values: string[] = [];
  for (const column of columns) {
    if (column.identity === 'a') continue;
    const id = `"${column.name}"`;
    names.push(id);
    if (!column.unique) values.push(`t.${id}`);
    else if (/^(bigint|integer|smallint|numeric)/.test(column.type)) {
      const { rows } = await sql<{ top: string }>`
        select coalesce(max(${sql.ref(column.name)}), 0)::text as top from audit_events`.execute(owner);
      values.push(`t.${id} + g.n * ${BigInt(rows[0]!.top) + 1n}`);
    } else if (column.type === 'text') values.push(`t.${id} || ':' || g.n`);
    else if (column.type === 'uuid') values.push('gen_random_uuid()');
    else throw new Error(`audit_events.${column.name} (${column.type}) is unique and the seed cannot vary it`);
  }
  await sql
    .raw(
      `insert into audit_events (${names.join(', ')})
       select ${values.join(', ')}
         from audit_events t cross join generate_series(1, ${copies}) as g(n)
        where t.agency_id = ${escapeLiteral(AGENCY)} and t.event_key like 'bench-export:%'
        order by g.n, t.seq`,
    )
    .execute(owner);
  // The seqs above were given, not drawn: the sequence moves past them, so later appends draw new ones.
  await sql`select setval('audit_events_seq', (select max(seq) from audit_events))`.execute(owner);
  await sql`
    insert into audit_chain (chain, position, event_seq, event_hash, prev_hash, hash)
    select ${AGENCY}, h.top + row_number() over (order by e.seq), e.seq, e.hash, ${'0'.repeat(64)}, ${'0'.repeat(64)}
      from audit_events e
      cross join (select coalesce(max(position), 0) as top from audit_chain where chain = ${AGENCY}) h
     where e.agency_id = ${AGENCY}
       and not exists (select 1 from audit_chain c where c.event_seq = e.seq)`.execute(owner);
}

interface ExportState {
  services: Services;
  token: string;
  events: number;
}

interface ExportSize {
  events: number;
}

export const auditExportBenchmark: Benchmark<ExportState, ExportSize> = {
  name: 'audit_export_1m',
  a: `GET ${EXPORT_PATH} on the API, as compliance staff, read to its end`,
  b: 'COPY (the same rows) TO STDOUT WITH (FORMAT csv) through psql, read to its end',
  figures: [{ key: 'seconds', label: 'export time', unit: 's', better: 'lower' }],
  goal: {
    text: 'ratio ≤ 2, API RSS growth < 150 MB',
    ratios: [{ key: 'seconds', max: 2 }],
    limits: [{ key: 'apiRssGrowthMB', label: 'API RSS growth while streaming (MB)', below: 150 }],
  },
  size: (options) => ({ events: options.events ?? (options.quick ? 20_000 : 1_000_000) }),
  warmupSize: (size) => size,

  async prepare(services, { events }) {
    if (!services.psql) throw new Error('no psql of PostgreSQL 17 for the COPY baseline: run npm run tools');
    const seeded = await seedEvents(services, events);
    const token = await tokenFor(services.db, { id: 'bench-compliance', role: 'compliance', agencyId: AGENCY });
    return { services, token, events: seeded };
  },

  // An API of its own each run: the growth is the export's, not on top of what an earlier export left allocated.
  async runA(state): Promise<RunResult> {
    const api = await state.services.startApi('export');
    const { seconds, lines, bytes, startMB, peakMB } = await stopAfter([api], async () => {
      const rss = api.watchRss();
      const startedAt = performance.now();
      const res = await fetch(`${api.url}${EXPORT_PATH}`, { headers: { authorization: `Bearer ${state.token}` } });
      if (res.status !== 200 || !res.body) throw new Error(`export: ${res.status} ${await res.text()}`);
      const counted = await countLines(res.body);
      return { ...counted, seconds: secondsSince(startedAt), ...rss.stop() };
    });
    const rows = lines - 1;
    return {
      figures: { seconds },
      extras: { rows, megabytes: Math.round(bytes / 1e5) / 10, apiRssGrowthMB: peakMB - startMB, apiPeakRssMB: peakMB },
      failures: rows < state.events ? [`the export held ${rows} rows of ${state.events}`] : [],
    };
  },

  async runB(state): Promise<RunResult> {
    const url = new URL(state.services.serviceUrl);
    const password = decodeURIComponent(url.password);
    url.password = '';
    const copy =
      `copy (select * from audit_events where agency_id = ${escapeLiteral(AGENCY)} order by seq) ` +
      'to stdout with (format csv, header)';
    const startedAt = performance.now();
    const psql = spawn(state.services.psql!, [url.toString(), '--no-psqlrc', '--quiet', '--command', copy], {
      env: { PATH: process.env.PATH ?? '', PGPASSWORD: password },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolveExit) => psql.once('exit', resolveExit));
    const { lines, bytes } = await countLines(psql.stdout);
    const code = await exited;
    if (code !== 0) throw new Error(`psql COPY exited with ${code}`);
    const seconds = secondsSince(startedAt);
    return { figures: { seconds }, extras: { rows: lines - 1, megabytes: Math.round(bytes / 1e5) / 10 } };
  },

  finish: async () => {},
};
