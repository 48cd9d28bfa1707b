import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Pool } from 'pg';

/**
 * `npm run bench -- --profile`: where the time goes. PostgreSQL counts every statement (pg_stat_statements, reset
 * before each measured run), the worker and the API write V8 CPU profiles (`node --cpu-prof`) when they exit, and the
 * runner profiles itself during the service's runs (audit_append appends from the runner's own process).
 */

const ROOT = resolve(__dirname, '..');

/**
 * The server's flags when profiling: the extension loaded, statements inside functions and triggers counted too,
 * the WAL's writes and flushes timed (a commit waits for its flush after its statement's time has stopped), and the
 * plan of a statement slower than 200 ms and a lock waited on for over a second logged.
 */
export const STATEMENT_STATS_FLAGS = [
  '-c',
  'shared_preload_libraries=pg_stat_statements,auto_explain',
  '-c',
  'auto_explain.log_min_duration=200',
  '-c',
  'log_lock_waits=on',
  '-c',
  'pg_stat_statements.track=all',
  '-c',
  'pg_stat_statements.track_planning=on',
  '-c',
  'pg_stat_statements.max=10000',
  '-c',
  'track_wal_io_timing=on',
];

/** One normalized statement of pg_stat_statements. */
export interface StatementStat {
  query: string;
  /** False for a statement run inside a function or trigger: its time is also in its caller's. */
  toplevel: boolean;
  calls: number;
  execMs: number;
  planMs: number;
  rows: number;
}

/** How late a backend reports its transaction and WAL counters at most: PGSTAT_IDLE_INTERVAL (10 s), and a second. */
const STATS_LAG_MS = 11_000;

/** The database's transactions and the server's WAL over an interval (pg_stat_database, pg_stat_wal). */
export interface ServerActivity {
  commits: number;
  rollbacks: number;
  walRecords: number;
  walBytes: number;
  walWrites: number;
  walWriteMs: number;
  walSyncs: number;
  walSyncMs: number;
}

/** Backends by what they were doing, sample by sample: a backend counted in 10 samples 100 ms apart spent ~1 s so. */
export interface WaitSamples {
  samples: number;
  byWait: Map<string, number>;
  /** By `<wait>\0<statement text>`. */
  byStatement: Map<string, number>;
}

export function addWaits(total: WaitSamples | null, more: WaitSamples): WaitSamples {
  if (!total) return more;
  total.samples += more.samples;
  for (const [key, n] of more.byWait) total.byWait.set(key, (total.byWait.get(key) ?? 0) + n);
  for (const [key, n] of more.byStatement) total.byStatement.set(key, (total.byStatement.get(key) ?? 0) + n);
  return total;
}

export function addActivity(total: ServerActivity | null, more: ServerActivity): ServerActivity {
  if (!total) return { ...more };
  const sum = { ...total };
  for (const key of Object.keys(sum) as (keyof ServerActivity)[]) sum[key] += more[key];
  return sum;
}

/** pg_stat_statements of one server, with its transaction and WAL counters, read and reset as its superuser. */
export class StatementStats {
  private constructor(private readonly pool: Pool) {}

  /** Creates the extension in the database of `superuserUrl` (the server must preload it: STATEMENT_STATS_FLAGS). */
  static async open(superuserUrl: string): Promise<StatementStats> {
    // One connection for the counters, one for the sampler.
    const pool = new Pool({ connectionString: superuserUrl, max: 2 });
    await pool.query('create extension if not exists pg_stat_statements');
    return new StatementStats(pool);
  }

  /**
   * Samples what the database's backends are doing every `everyMs` until stop(): running, waiting (on a lock, on
   * I/O, …) or idle inside a transaction, which holds its locks while the client works.
   */
  sampleWaits(everyMs = 100): { stop: () => Promise<WaitSamples> } {
    const samples: WaitSamples = { samples: 0, byWait: new Map(), byStatement: new Map() };
    let stopped = false;
    // A failed sample ends the sampling (the server is going away); what was sampled stands.
    const loop = (async () => {
      while (!stopped) {
        const { rows } = await this.pool.query<{ wait: string; query: string }>(
          `select case when state = 'active' then coalesce(wait_event_type || ':' || wait_event, 'CPU (running)')
                       else 'idle in transaction' end as wait, query
             from pg_stat_activity
            where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
              and state in ('active', 'idle in transaction')`,
        );
        samples.samples++;
        for (const { wait, query } of rows) {
          samples.byWait.set(wait, (samples.byWait.get(wait) ?? 0) + 1);
          const key = `${wait}\u0000${query}`;
          samples.byStatement.set(key, (samples.byStatement.get(key) ?? 0) + 1);
        }
        await sleep(everyMs);
      }
    })().catch(() => undefined);
    return {
      stop: async () => {
        stopped = true;
        await loop;
        return samples;
      },
    };
  }

  /**
   * Zeroes the counters, after a pause: what backends did before would otherwise be reported after the reset (an
   * idle backend reports ten seconds late) and counted in the next run.
   */
  async reset(): Promise<void> {
    await sleep(STATS_LAG_MS);
    await this.pool.query(`select pg_stat_statements_reset(), pg_stat_reset(), pg_stat_reset_shared('wal')`);
  }

  /**
   * Transactions and WAL since the last reset. Read after a pause: a backend reports these counters at most once a
   * second, and one that has gone idle ten seconds later (PGSTAT_IDLE_INTERVAL).
   */
  async activity(): Promise<ServerActivity> {
    await sleep(STATS_LAG_MS);
    // bigint and double columns arrive as strings and numbers.
    const { rows } = await this.pool.query<Record<keyof ServerActivity, string | number>>(
      `select d.xact_commit as "commits", d.xact_rollback as "rollbacks", w.wal_records as "walRecords",
              w.wal_bytes as "walBytes", w.wal_write as "walWrites", w.wal_write_time as "walWriteMs",
              w.wal_sync as "walSyncs", w.wal_sync_time as "walSyncMs"
         from pg_stat_database d, pg_stat_wal w where d.datname = current_database()`,
    );
    const row = rows[0]!;
    return {
      commits: Number(row.commits),
      rollbacks: Number(row.rollbacks),
      walRecords: Number(row.walRecords),
      walBytes: Number(row.walBytes),
      walWrites: Number(row.walWrites),
      walWriteMs: Number(row.walWriteMs),
      walSyncs: Number(row.walSyncs),
      walSyncMs: Number(row.walSyncMs),
    };
  }

  /** Every statement counted since the last reset, but these reads and resets. */
  async read(): Promise<StatementStat[]> {
    const { rows } = await this.pool.query<{
      query: string;
      toplevel: boolean;
      calls: string;
      exec_ms: number;
      plan_ms: number;
      rows: string;
    }>(`select query, toplevel, calls, total_exec_time as exec_ms, total_plan_time as plan_ms, rows
          from pg_stat_statements where query not like '%pg_stat%'`);
    return rows.map((r) => ({
      query: r.query,
      toplevel: r.toplevel,
      calls: Number(r.calls),
      execMs: r.exec_ms,
      planMs: r.plan_ms,
      rows: Number(r.rows),
    }));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** Adds `rows` to `totals`, statement by statement (the same text at the same level is the same statement). */
export function addStatements(totals: Map<string, StatementStat>, rows: StatementStat[]): void {
  for (const row of rows) {
    const key = `${row.toplevel ? 't' : 'n'}:${row.query}`;
    const sum = totals.get(key);
    if (!sum) totals.set(key, { ...row });
    else {
      sum.calls += row.calls;
      sum.execMs += row.execMs;
      sum.planMs += row.planMs;
      sum.rows += row.rows;
    }
  }
}

/** A V8 CPU profile, as `node --cpu-prof` writes it and the inspector's Profiler.stop returns it. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** A stretch of time in microseconds of the monotonic clock that V8's profiles and process.hrtime share. */
export interface Window {
  startUs: number;
  endUs: number;
}

export const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** The profiler in this process, around `run`. */
export async function profileInProcess<T>(run: () => Promise<T>): Promise<{ result: T; profile: CpuProfile }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    const result = await run();
    const { profile } = await session.post('Profiler.stop');
    return { result, profile };
  } finally {
    // A run that failed leaves the profiler on: disconnecting stops it.
    session.disconnect();
  }
}

/** Where a script lives, for a reader: relative to the repository, or `<package>/<path>` for a dependency. */
function shortUrl(url: string): string {
  if (!url) return '';
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) return path.slice(modules + '/node_modules/'.length);
  return path.startsWith(`${ROOT}/`) ? relative(ROOT, path) : path;
}

const NODE_CORE = 'node: (Node core)';
const NATIVE = '(native: V8 builtins, bindings, syscalls)';

/**
 * The part of the process a function belongs to: a dependency (`node_modules/<package>`), a folder of the project
 * (`db/`, `api/`, …), Node's own code, native code, or one of V8's pseudo-functions ((garbage collector), (program),
 * (idle)).
 */
export function areaOf(functionName: string, url: string): string {
  if (!url) return functionName.startsWith('(') && functionName !== '(anonymous)' ? functionName : NATIVE;
  if (url.startsWith('node:')) return NODE_CORE;
  if (url.startsWith('evalmachine.')) return 'evalmachine (vm scripts without a file name)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [first, second] = path.slice(modules + '/node_modules/'.length).split('/');
    return `node_modules/${first?.startsWith('@') ? `${first}/${second}` : first}`;
  }
  if (path.startsWith(`${ROOT}/.data/`)) return `${basename(path)} (prebuilt bundle)`;
  if (path.startsWith(`${ROOT}/`)) {
    const rel = relative(ROOT, path);
    return rel.includes('/') ? `${rel.split('/')[0]}/` : rel;
  }
  return path;
}

export interface CpuSummary {
  label: string;
  file: string;
  /** The whole profile: from its start to its end, and the part of it not idle. */
  wallMs: number;
  wholeBusyMs: number;
  /** The time of the windows the summary is of (or of the whole profile), and the part of it not idle. */
  sampledMs: number;
  busyMs: number;
  windowed: boolean;
  functions: { name: string; where: string; selfMs: number }[];
  /**
   * Self time by area, and "owned" time: a sample in Node's core or in native code counts for the nearest caller
   * that is neither (so a socket write the pg driver asks for is pg's).
   */
  areas: { area: string; selfMs: number; ownedMs: number }[];
}

/**
 * Self time by function and by area, of the samples inside `windows` (all of them without): a sample's time is its
 * time delta, so a node's self time is the sum of the deltas of the samples that hit it.
 */
export function summarizeCpuProfile(profile: CpuProfile, label: string, file: string, windows?: Window[]): CpuSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const ownerCache = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const cached = ownerCache.get(id);
    if (cached) return cached;
    const { functionName, url } = byId.get(id)!.callFrame;
    const area = areaOf(functionName, url);
    const up = parent.get(id);
    const owner =
      (area === NODE_CORE || area === NATIVE) && up !== undefined && byId.get(up)!.callFrame.functionName !== '(root)'
        ? ownerOf(up)
        : area;
    ownerCache.set(id, owner);
    return owner;
  };
  const inWindow = (us: number) => !windows || windows.some((w) => us >= w.startUs && us <= w.endUs);
  const selfById = new Map<number, number>();
  const wholeById = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    const delta = deltas[i] ?? 0;
    at += delta;
    const ms = Math.max(0, delta) / 1000;
    wholeById.set(samples[i]!, (wholeById.get(samples[i]!) ?? 0) + ms);
    if (inWindow(at)) selfById.set(samples[i]!, (selfById.get(samples[i]!) ?? 0) + ms);
  }
  const functions = new Map<string, { name: string; where: string; selfMs: number }>();
  const areas = new Map<string, { area: string; selfMs: number; ownedMs: number }>();
  const areaEntry = (area: string) => {
    const entry = areas.get(area) ?? { area, selfMs: 0, ownedMs: 0 };
    areas.set(area, entry);
    return entry;
  };
  let sampledMs = 0;
  let idleMs = 0;
  let wholeMs = 0;
  let wholeIdleMs = 0;
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const whole = wholeById.get(node.id) ?? 0;
    wholeMs += whole;
    if (functionName === '(idle)') wholeIdleMs += whole;
    const selfMs = selfById.get(node.id) ?? 0;
    if (selfMs === 0) continue;
    sampledMs += selfMs;
    if (functionName === '(idle)') idleMs += selfMs;
    // tsx compiles TypeScript into a line or two: a project file's line numbers would point nowhere.
    const where = !url ? '' : /\.tsx?$/.test(url) ? shortUrl(url) : `${shortUrl(url)}:${lineNumber + 1}`;
    const key = `${functionName}@${where}`;
    const entry = functions.get(key) ?? { name: functionName || '(anonymous)', where, selfMs: 0 };
    entry.selfMs += selfMs;
    functions.set(key, entry);
    areaEntry(areaOf(functionName, url)).selfMs += selfMs;
    areaEntry(ownerOf(node.id)).ownedMs += selfMs;
  }
  return {
    label,
    file,
    wallMs: (profile.endTime - profile.startTime) / 1000,
    wholeBusyMs: wholeMs - wholeIdleMs,
    sampledMs,
    busyMs: sampledMs - idleMs,
    windowed: windows !== undefined,
    functions: [...functions.values()].sort((x, y) => y.selfMs - x.selfMs),
    areas: [...areas.values()].sort((x, y) => y.selfMs - x.selfMs),
  };
}

/** Written beside a process's CPU profile when it is ready (polling, listening): its start-up is not its work. */
export const READY_FILE = 'ready-at';

/**
 * Every `.cpuprofile` under `dir`, labelled by the folder it was written in (`<phase>-<process>`) and its thread,
 * summarized over `windows` from the moment the process was ready.
 */
export function readCpuProfiles(dir: string, windows?: Window[]): CpuSummary[] {
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return entries
    .filter((entry) => entry.endsWith('.cpuprofile'))
    .sort()
    .map((entry) => {
      const file = join(dir, entry);
      const folder = dirname(file);
      let readyUs = 0;
      try {
        readyUs = Number(readFileSync(join(folder, READY_FILE), 'utf8'));
      } catch {
        // the runner's own profile: no start-up in it
      }
      const from = windows?.map((w) => ({ startUs: Math.max(w.startUs, readyUs), endUs: w.endUs }));
      const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
      // CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile: thread 0 is the main one.
      const thread = /^CPU\.\d+\.\d+\.\d+\.(\d+)\./.exec(basename(entry))?.[1];
      const summary = summarizeCpuProfile(profile, basename(folder), relative(ROOT, file), from);
      const sandbox = summary.areas.some((a) => a.area.endsWith('(prebuilt bundle)'));
      summary.label +=
        thread === undefined || thread === '0' ? '' : `, ${sandbox ? 'workflow thread' : 'thread'} ${thread}`;
      return summary;
    });
}

/** Writes the statements of a table as JSON, for a closer look than the table's top rows. */
export function writeStatements(file: string, stats: StatementStat[]): void {
  writeFileSync(
    file,
    `${JSON.stringify(
      [...stats].sort((x, y) => y.calls - x.calls),
      null,
      1,
    )}\n`,
  );
}

export function writeCpuProfile(file: string, profile: CpuProfile): void {
  writeFileSync(file, JSON.stringify(profile));
}

/** What one benchmark's profile holds: statements per side (measured runs only), a probe's, the CPU profiles. */
export interface BenchmarkProfile {
  name: string;
  statements: StatementTable[];
  cpu: CpuSummary[];
}

export interface StatementTable {
  title: string;
  stats: StatementStat[];
  /** What the statements were for ("case", 1000): each gets a count per unit. */
  unit?: { name: string; count: number };
  /** Rows by calls (what a unit runs), not by time. */
  byCalls?: boolean;
  activity?: ServerActivity | null;
  waits?: WaitSamples | null;
}

const TOP = 25;
/** A thread busy less than this is summed up in a line, without tables. */
const QUIET_MS = 250;

const ms = (value: number) => (value >= 100 ? value.toFixed(0) : value.toPrecision(3));
const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '–');

/** A statement's text on one line of a table, cut at `max` characters. */
function shortQuery(query: string, max = 160): string {
  const line = query.replace(/\s+/g, ' ').trim().replace(/\|/g, '\\|');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function activityLine(a: ServerActivity, unit?: { name: string; count: number }): string {
  const per = (n: number) => (unit ? ` (${(n / unit.count).toFixed(2)} per ${unit.name})` : '');
  return (
    `Transactions: ${a.commits} commits${per(a.commits)}, ${a.rollbacks} rollbacks. WAL: ${a.walRecords} records, ` +
    `${(a.walBytes / 1e6).toFixed(1)} MB, ${a.walWrites} writes taking ${ms(a.walWriteMs)} ms, ${a.walSyncs} flushes ` +
    `(fsync) taking ${ms(a.walSyncMs)} ms: commits wait for these, and no statement's time includes them.`
  );
}

function waitTables(w: WaitSamples): string[] {
  const total = [...w.byWait.values()].reduce((t, n) => t + n, 0);
  const lines = [
    '',
    `Backends of the database sampled every 100 ms (${w.samples} samples): on average ` +
      `${(total / Math.max(1, w.samples)).toFixed(2)} busy, running or waiting or idle inside a transaction.`,
    '',
    '| backend was | samples | share |',
    '| --- | ---: | ---: |',
    ...[...w.byWait].sort((x, y) => y[1] - x[1]).map(([wait, n]) => `| ${wait} | ${n} | ${pct(n, total)} |`),
    '',
    '| backend was | samples | statement (the last one, when idle in a transaction) |',
    '| --- | ---: | --- |',
  ];
  for (const [key, n] of [...w.byStatement].sort((x, y) => y[1] - x[1]).slice(0, 12)) {
    const [wait, query] = key.split('\u0000');
    lines.push(`| ${wait} | ${n} | \`${shortQuery(query ?? '', 120)}\` |`);
  }
  return lines;
}

function statementTable({ stats, unit, byCalls, activity, waits }: StatementTable): string[] {
  const top = stats.filter((s) => s.toplevel);
  const nested = stats.filter((s) => !s.toplevel);
  const sum = (rows: StatementStat[], pick: (s: StatementStat) => number) => rows.reduce((t, s) => t + pick(s), 0);
  const topCalls = sum(top, (s) => s.calls);
  const perUnit = unit ? ` (${(topCalls / unit.count).toFixed(2)} per ${unit.name}, ${unit.count} ${unit.name}s)` : '';
  const lines = [
    `Top level: ${topCalls} statements${perUnit}, ${ms(sum(top, (s) => s.execMs))} ms executing, ` +
      `${ms(sum(top, (s) => s.planMs))} ms planning; inside functions and triggers: ` +
      `${sum(nested, (s) => s.calls)} statements, ${ms(sum(nested, (s) => s.execMs))} ms (also in their callers' time). ` +
      `By ${byCalls ? 'calls' : 'time executing'}, the first ${TOP}:`,
    ...(activity ? ['', activityLine(activity, unit)] : []),
    ...(waits ? waitTables(waits) : []),
    '',
    `| # | calls | ${unit ? `per ${unit.name} | ` : ''}exec ms | plan ms | mean ms | rows | level | statement |`,
    `| ---: | ---: | ${unit ? '---: | ' : ''}---: | ---: | ---: | ---: | --- | --- |`,
  ];
  [...stats]
    .sort(byCalls ? (x, y) => y.calls - x.calls || y.execMs - x.execMs : (x, y) => y.execMs - x.execMs)
    .slice(0, TOP)
    .forEach((s, i) => {
      const per = unit ? `${(s.calls / unit.count).toFixed(2)} | ` : '';
      lines.push(
        `| ${i + 1} | ${s.calls} | ${per}${ms(s.execMs)} | ${ms(s.planMs)} | ${ms(s.execMs / Math.max(1, s.calls))} | ` +
          `${s.rows} | ${s.toplevel ? 'top' : 'nested'} | \`${shortQuery(s.query)}\` |`,
      );
    });
  return lines;
}

function cpuTables(cpu: CpuSummary): string[] {
  const whole = `whole profile ${ms(cpu.wallMs / 1000)} s, ${ms(cpu.wholeBusyMs / 1000)} s on the CPU`;
  const summary = cpu.windowed
    ? `${whole}; during the service's measured runs (from when the process was ready): ${ms(cpu.sampledMs / 1000)} s, ` +
      `${ms(cpu.busyMs / 1000)} s on the CPU (${pct(cpu.busyMs, cpu.sampledMs)})`
    : whole;
  const lines = [`#### ${cpu.label}`, '', `\`${cpu.file}\`: ${summary}.`];
  if (cpu.busyMs < QUIET_MS) return lines;
  lines.push(
    '',
    '"% busy" is of the time on the CPU; "owned" counts the time in Node\'s core and in native code for the nearest ' +
      'caller outside them.',
    '',
    '| area | self ms | % busy | owned ms | % busy |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...cpu.areas.map((a) =>
      a.area === '(idle)'
        ? `| (idle) | ${ms(a.selfMs)} | – | | |`
        : `| ${a.area} | ${ms(a.selfMs)} | ${pct(a.selfMs, cpu.busyMs)} | ${ms(a.ownedMs)} | ${pct(a.ownedMs, cpu.busyMs)} |`,
    ),
    '',
    '| function | where | self ms | % busy |',
    '| --- | --- | ---: | ---: |',
  );
  for (const f of cpu.functions.filter((f) => f.name !== '(idle)').slice(0, TOP)) {
    // A regular expression's "name" is its source: long, and full of table-breaking bars.
    lines.push(`| \`${shortQuery(f.name, 100)}\` | ${f.where} | ${ms(f.selfMs)} | ${pct(f.selfMs, cpu.busyMs)} |`);
  }
  return lines;
}

/** The profile document: `header` (what ran, where), then each benchmark's statements and CPU profiles. */
export function profileMarkdown(header: string[], benchmarks: BenchmarkProfile[]): string {
  const lines = [...header];
  for (const b of benchmarks) {
    lines.push('', `## ${b.name}`);
    for (const table of b.statements) {
      lines.push('', `### PostgreSQL: ${table.title}`, '', ...statementTable(table));
    }
    // A process of the warm-up only (transfer_10k starts one per run) was gone before the measured runs.
    const shown = b.cpu.filter((cpu) => !cpu.windowed || cpu.sampledMs > 0);
    if (shown.length) lines.push('', '### CPU profiles (self time)');
    for (const cpu of shown) lines.push('', ...cpuTables(cpu));
    const gone = b.cpu.length - shown.length;
    if (gone) lines.push('', `Not shown: ${gone} profiles of threads gone before the measured runs (the warm-up's).`);
  }
  return `${lines.join('\n')}\n`;
}
