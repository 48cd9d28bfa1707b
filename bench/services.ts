import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { sql } from 'kysely';
import { type Db, openDatabase } from '../db/database';
import { migrateDatabase } from '../db/migrate';
import { roleOf, setUpRoles } from '../db/roles';
import {
  findPostgresTool,
  findTemporalTool,
  freePort,
  newLogins,
  startEmbeddedPostgres,
  startTemporalDevServer,
} from '../scripts/dev-services';
import { bundleWorkflows } from '../scripts/bundle-workflows';
import { startMailCatcher } from '../scripts/mail-catcher';
import { SCRATCH_TABLE } from './baseline/activities';
import { READY_FILE, STATEMENT_STATS_FLAGS, StatementStats, nowUs } from './profile';
import { TEST_PAYLOAD_KEYS, testDataConverter } from '../tests/support/payload-keys';

const ROOT = resolve(__dirname, '..');
export const BENCH_DIR = join(ROOT, '.data', 'bench');

/** A process the bench started, whose memory it reads from /proc (Linux). */
export interface ChildService {
  name: string;
  pid: number;
  /** Where the process answers HTTP, for the API and the bare read server. */
  url: string;
  /** Starts watching the process's resident memory; stop() gives where it started and its peak since, in MB. */
  watchRss(): { stop(): { startMB: number; peakMB: number } };
  stop(): Promise<void>;
}

export interface Services {
  dir: string;
  /** The schema's owner (scratch tables, bulk seeds) and the service's role (what the worker and the API use). */
  ownerUrl: string;
  serviceUrl: string;
  owner: Db;
  db: Db;
  temporalAddress: string;
  /** The service's client (payloads sealed, as the worker and the API seal them) and a plain one for baselines. */
  temporal: Client;
  bareTemporal: Client;
  psql: string | undefined;
  /** With --profile: PostgreSQL's statement counts, and where the worker and the API write their CPU profiles. */
  profiling: Profiling | null;
  startWorker(taskQueue: string): Promise<ChildService>;
  startApi(taskQueue: string): Promise<ChildService>;
  startBareWorker(taskQueue: string): Promise<ChildService>;
  startBareReadServer(): Promise<ChildService>;
  versions(): Promise<Record<string, string>>;
  /**
   * Replaces the Temporal dev server with an empty one (and the clients with ones connected to it). Its SQLite is
   * in memory and a transfer run leaves 10,000 workflows waiting at review: five pairs of them took the server
   * down. Every transfer run, and every benchmark, starts on a server of its own.
   */
  freshTemporal(): Promise<void>;
  stop(): Promise<void>;
}

export interface Profiling {
  statements: StatementStats;
  /** The worker and API started from now on write their CPU profiles to `<benchmark>/<phase>-<process>/`. */
  at(benchmark: string, phase: string): void;
  /** The folder of a benchmark's CPU profiles. */
  dirOf(benchmark: string): string;
}

/** A memory figure of /proc/<pid>/status, in MB (10^6 bytes, as the goals are written). */
function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1];
  return kib ? (Number(kib) * 1024) / 1e6 : 0;
}

/**
 * The peak resident memory of a process over an interval: the kernel's high-water mark (VmHWM), reset at the
 * start through clear_refs, and VmRSS sampled every 100 ms in case the reset is not allowed.
 */
function watchRss(pid: number) {
  const startMB = statusField(pid, 'VmRSS');
  let reset = true;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    reset = false;
  }
  let sampled = startMB;
  const sampler = setInterval(() => {
    try {
      sampled = Math.max(sampled, statusField(pid, 'VmRSS'));
    } catch {
      // the process has gone; its last sample stands
    }
  }, 100);
  return {
    stop() {
      clearInterval(sampler);
      let peakMB = sampled;
      try {
        peakMB = Math.max(sampled, reset ? statusField(pid, 'VmHWM') : 0);
      } catch {
        // gone
      }
      return { startMB: Math.round(startMB), peakMB: Math.round(peakMB) };
    },
  };
}

/** When a profiled process became ready, beside its profile: what came before is its start-up. */
function markReady(profileDir: string): void {
  mkdirSync(profileDir, { recursive: true });
  writeFileSync(join(profileDir, READY_FILE), String(nowUs()));
}

/** Runs `run`, then stops the processes, whether it succeeded or not. */
export async function stopAfter<T>(children: ChildService[], run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
}

/** Runs `run`; if it fails, stops the processes (started before it, and of no use without it). */
export async function stopOnFailure<T>(children: ChildService[], run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    await Promise.all(children.map((child) => child.stop()));
    throw error;
  }
}

interface Spawned {
  child: ChildProcess;
  exited: Promise<void>;
  exitReason: () => string | undefined;
  /** How long a SIGTERM gets before SIGKILL. */
  graceMs: number;
}

const running = new Set<ChildProcess>();

// A bench stopped by an error or Ctrl-C takes its processes with it.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * How docker-compose.yml runs the worker: a heap of 256 MB, and config.ts's default cache of 100 workflows. The bare
 * worker runs with the same two, so that neither side's memory or speed comes from a bigger cache.
 */
export const WORKER_NODE_FLAGS = ['--max-old-space-size=256'];
export const WORKER_CACHED_WORKFLOWS = 100;

/**
 * Runs a TypeScript entry point in a Node process of its own (its pid is the process itself, not a wrapper), with
 * `nodeFlags` before it. `cpuProfileDir`: Node writes a CPU profile there when the process exits (not when a signal
 * kills it).
 */
function spawnTs(
  file: string,
  name: string,
  logDir: string,
  env: Record<string, string>,
  options: { ipc?: boolean; nodeFlags?: string[]; cpuProfileDir?: string } = {},
): Spawned {
  const { ipc = false, nodeFlags = [], cpuProfileDir } = options;
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const log = openSync(logFile, 'a');
  const profile = cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir] : [];
  const child = spawn(process.execPath, [...nodeFlags, ...profile, '--import', 'tsx', file], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', log, log, ...(ipc ? ['ipc' as const] : [])],
  });
  closeSync(log);
  running.add(child);
  let reason: string | undefined;
  const exited = new Promise<void>((resolveExit) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      reason = `${name} exited (code ${code ?? '-'}, signal ${signal ?? '-'}); see ${logFile}`;
      resolveExit();
    });
  });
  // A profiled process writes its profile as it exits, which takes a while after a long run.
  return { child, exited, exitReason: () => reason, graceMs: cpuProfileDir ? 180_000 : 30_000 };
}

async function stopChild({ child, exited, exitReason, graceMs }: Spawned): Promise<void> {
  if (exitReason()) return;
  child.kill('SIGTERM');
  const stopped = await Promise.race([exited.then(() => true), sleep(graceMs, false, { ref: false })]);
  if (!stopped) {
    child.kill('SIGKILL');
    await exited;
  }
}

function childService(spawned: Spawned, name: string, url: string): ChildService {
  const pid = spawned.child.pid!;
  return { name, pid, url, watchRss: () => watchRss(pid), stop: () => stopChild(spawned) };
}

async function until(what: string, spawned: Spawned, probe: () => Promise<boolean>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    const reason = spawned.exitReason();
    if (reason) throw new Error(`${what}: ${reason}`);
    if (Date.now() > deadline) {
      await stopChild(spawned);
      throw new Error(`${what}: not ready within ${timeoutMs / 1000} s`);
    }
    await sleep(250);
  }
}

/** Settings a bare child receives over IPC (not the environment: only config.ts reads that). */
export interface BareSettings {
  databaseUrl: string;
  temporalAddress: string;
  taskQueue: string;
  workflowBundle: string;
  maxCachedWorkflows: number;
}

async function startBare(
  file: string,
  name: string,
  logDir: string,
  settings: Partial<BareSettings> & { databaseUrl: string },
  nodeFlags: string[] = [],
): Promise<ChildService> {
  const spawned = spawnTs(file, name, logDir, {}, { ipc: true, nodeFlags });
  spawned.child.send(settings);
  const ready = await Promise.race([
    new Promise<{ url?: string }>((resolveReady) => spawned.child.once('message', resolveReady)),
    spawned.exited.then(() => undefined),
  ]);
  if (!ready) throw new Error(spawned.exitReason());
  return childService(spawned, name, ready.url ?? '');
}

/**
 * Everything the benchmarks share, fresh under .data/bench/: an embedded PostgreSQL with the owner and service
 * roles, migrated; a Temporal dev server (WAL, no fsync, as the tests run it); the service's workflow bundle and
 * the baseline's, made once; a mail catcher for the letters the cases send. With `profile`, PostgreSQL counts
 * statements (pg_stat_statements) and the worker and the API write CPU profiles under .data/bench/profile/.
 */
export async function startServices(
  say: (line: string) => void,
  options: { profile?: boolean } = {},
): Promise<Services> {
  const dir = BENCH_DIR;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const logDir = join(dir, 'logs');
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    say('starting PostgreSQL, Temporal, and bundling the workflows');
    const pg = await startEmbeddedPostgres({
      dataDir: join(dir, 'postgres'),
      port: await freePort(),
      database: 'bench',
      // Profiling: the server's log (slow statements' plans, long lock waits) in .data/bench/postgres.log.
      ...(options.profile
        ? {
            postgresFlags: STATEMENT_STATS_FLAGS,
            onLog: (message) => appendFileSync(join(dir, 'postgres.log'), message),
          }
        : {}),
    });
    stops.push(() => pg.stop());
    let profiling: Profiling | null = null;
    let cpuProfileDir: ((name: string) => string) | undefined;
    if (options.profile) {
      const statements = await StatementStats.open(pg.url);
      stops.push(() => statements.close());
      const root = join(dir, 'profile');
      const dirOf = (benchmark: string) => join(root, benchmark);
      profiling = {
        statements,
        at(benchmark, phase) {
          cpuProfileDir = (name) => join(dirOf(benchmark), `${phase}-${name}`);
        },
        dirOf,
      };
      cpuProfileDir = (name) => join(root, 'unnamed', name);
    }
    const { ownerUrl, serviceUrl } = await setUpRoles(pg.url, newLogins());
    await migrateDatabase(ownerUrl, serviceUrl);
    const owner = openDatabase(ownerUrl, { poolSize: 2 });
    stops.push(() => owner.close());
    await createScratchTable(owner.db, roleOf(serviceUrl));
    const binary = findTemporalTool('temporal', say);
    if (!binary) throw new Error('no temporal CLI: run npm run tools');
    let servers = 0;
    const startTemporal = async () =>
      startTemporalDevServer({
        binary,
        port: await freePort(),
        logFile: join(dir, `temporal-${++servers}.log`),
        fast: true,
      });
    let temporalServer = await startTemporal();
    stops.push(() => temporalServer.stop());
    const mail = await startMailCatcher();
    stops.push(() => mail.stop());

    const serviceBundle = (await bundleWorkflows(join(dir, 'workflow-bundle.js'), quietLogger)).path;
    const baselineBundle = join(dir, 'baseline-bundle.js');
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('./baseline/workflows'),
      logger: quietLogger,
    });
    writeFileSync(baselineBundle, code);

    const database = openDatabase(serviceUrl, { poolSize: 10 });
    stops.push(() => database.close());
    let connection = await Connection.connect({ address: temporalServer.address });
    stops.push(() => connection.close());

    // The service's processes as production runs them, but for the reconcile, which would run in the middle of a
    // measurement: its schedule is set a week out.
    const serviceEnv = (taskQueue: string, port: number): Record<string, string> => ({
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      DATABASE_URL: serviceUrl,
      TEMPORAL_ADDRESS: temporalServer.address,
      TEMPORAL_TLS_DISABLED: 'true',
      TEMPORAL_TASK_QUEUE: taskQueue,
      PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
      WORKFLOW_BUNDLE: serviceBundle,
      DATA_DIR: join(dir, 'service'),
      SMTP_URL: mail.url,
      RECONCILE_INTERVAL_MINUTES: '10080',
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      // Every request of a benchmark comes from one address and a few tokens.
      RATE_LIMIT_PER_MINUTE: '100000000',
      RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '100000000',
    });
    const polling = (taskQueue: string) => async () => {
      const { pollers } = await connection.workflowService.describeTaskQueue({
        namespace: 'default',
        taskQueue: { name: taskQueue },
        taskQueueType: 1,
      });
      return (pollers ?? []).length > 0;
    };

    const services: Services = {
      dir,
      ownerUrl,
      serviceUrl,
      owner: owner.db,
      db: database.db,
      temporalAddress: temporalServer.address,
      temporal: new Client({ connection, dataConverter: testDataConverter() }),
      bareTemporal: new Client({ connection }),
      async freshTemporal() {
        await connection.close();
        await temporalServer.stop();
        temporalServer = await startTemporal();
        connection = await Connection.connect({ address: temporalServer.address });
        services.temporalAddress = temporalServer.address;
        services.temporal = new Client({ connection, dataConverter: testDataConverter() });
        services.bareTemporal = new Client({ connection });
      },
      psql: findPostgresTool('psql'),
      profiling,
      async startWorker(taskQueue) {
        const name = `worker-${taskQueue}`;
        const profileDir = cpuProfileDir?.(name);
        const env = { ...serviceEnv(taskQueue, 0), WORKER_MAX_CACHED_WORKFLOWS: String(WORKER_CACHED_WORKFLOWS) };
        const spawned = spawnTs('worker/main.ts', name, logDir, env, {
          nodeFlags: WORKER_NODE_FLAGS,
          cpuProfileDir: profileDir,
        });
        await until('the worker', spawned, polling(taskQueue));
        if (profileDir) markReady(profileDir);
        return childService(spawned, 'worker', '');
      },
      async startApi(taskQueue) {
        const port = await freePort();
        const name = `api-${taskQueue}`;
        const profileDir = cpuProfileDir?.(name);
        const spawned = spawnTs('api/main.ts', name, logDir, serviceEnv(taskQueue, port), {
          cpuProfileDir: profileDir,
        });
        const url = `http://127.0.0.1:${port}`;
        await until('the API', spawned, () =>
          fetch(`${url}/health`).then(
            () => true,
            () => false,
          ),
        );
        if (profileDir) markReady(profileDir);
        return childService(spawned, 'api', url);
      },
      startBareWorker: (taskQueue) =>
        startBare(
          'bench/baseline/worker.ts',
          `bare-worker-${taskQueue}`,
          logDir,
          {
            databaseUrl: serviceUrl,
            temporalAddress: temporalServer.address,
            taskQueue,
            workflowBundle: baselineBundle,
            maxCachedWorkflows: WORKER_CACHED_WORKFLOWS,
          },
          WORKER_NODE_FLAGS,
        ),
      startBareReadServer: () =>
        startBare('bench/baseline/read-server.ts', 'bare-read-server', logDir, { databaseUrl: serviceUrl }),
      async versions() {
        const { rows } = await sql<{ version: string }>`select current_setting('server_version') as version`.execute(
          database.db,
        );
        const temporalCli = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim();
        return { postgres: rows[0]?.version ?? '?', temporalCli };
      },
      stop,
    };
    return services;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The baselines' table: one row per bare activity, written by the service's role as the real activities are. */
async function createScratchTable(owner: Db, serviceRole: string): Promise<void> {
  await sql`create table ${sql.table(SCRATCH_TABLE)} (
    id bigserial primary key, tag text not null, n int not null, step int not null,
    at timestamptz not null default now())`.execute(owner);
  await sql`grant select, insert on ${sql.table(SCRATCH_TABLE)} to ${sql.id(serviceRole)}`.execute(owner);
  await sql`grant usage on all sequences in schema public to ${sql.id(serviceRole)}`.execute(owner);
}

const quietLogger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error: (message: string) => process.stderr.write(`${message}\n`),
  log() {},
};
