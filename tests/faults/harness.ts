import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { SMTPServer } from 'smtp-server';
import { type Db, type DatabaseHandle, openDatabase } from '../../db/database';
import { migrateDatabase } from '../../db/migrate';
import { setUpRoles } from '../../db/roles';
import { createToken, upsertUser } from '../../db/users';
import {
  type RunningTemporal,
  findTemporalTool,
  freePort,
  newLogins,
  startTemporalDevServer,
} from '../../scripts/dev-services';
import { TEST_DIR, testContext } from '../support/context';
import { TEST_PAYLOAD_KEYS } from '../support/payload-keys';
import { type ApiResponse, send } from '../support/stack';

/**
 * A whole deployment of its own for fault tests: PostgreSQL, a Temporal dev server on a database file (durable:
 * no WAL-off shortcuts), an SMTP peer, and the worker and the API as real processes, each of which can be killed
 * and started again. Its crashes are counted: a process that exits without being told to is one.
 */
export interface FaultStack {
  dir: string;
  db: Db;
  apiUrl: string;
  taskQueue: string;
  temporalAddress: string;
  /** Every message the SMTP peer accepted, by Message-ID. */
  mail: Map<string, number>;
  /** Processes that exited without being told to. */
  crashes: string[];
  request<T = any>(method: string, path: string, body?: unknown, token?: string): Promise<ApiResponse<T>>;
  token(role: string, agencyId: string, userId?: string): Promise<string>;
  worker: ManagedProcess;
  api: ManagedProcess;
  temporal: { kill(signal: NodeJS.Signals): Promise<void>; start(): Promise<void> };
  postgres: { stop(): Promise<void>; start(): Promise<void>; terminateConnections(): Promise<number> };
  close(): Promise<void>;
}

export interface ManagedProcess {
  name: string;
  start(): Promise<void>;
  /** Sends the signal and waits for the exit (a kill that is meant, not a crash). */
  kill(signal: NodeJS.Signals): Promise<void>;
  running(): boolean;
}

const TSX = resolve(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
const ROOT = resolve(__dirname, '..', '..');

function managed(
  name: string,
  script: string,
  env: NodeJS.ProcessEnv,
  logFile: string,
  ready: (logSinceStart: string) => Promise<boolean>,
  crashes: string[],
  args: string[] = [],
): ManagedProcess {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let meant = false;
  return {
    name,
    running: () => child !== null,
    async start() {
      meant = false;
      const offset = existsSync(logFile) ? statSync(logFile).size : 0;
      const fd = openSync(logFile, 'a');
      const proc = spawn(TSX, [script, ...args], { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
      closeSync(fd);
      child = proc;
      exited = new Promise((done) =>
        proc.once('exit', (code, signal) => {
          if (!meant) crashes.push(`${name} exited by itself (code ${code ?? '-'}, signal ${signal ?? '-'})`);
          if (child === proc) child = null;
          done();
        }),
      );
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline) {
        if (child !== proc) throw new Error(`${name} exited while starting; see ${logFile}:\n${tail(logFile)}`);
        const since = readFileSync(logFile).subarray(offset).toString('utf8');
        if (await ready(since).catch(() => false)) return;
        await sleep(250);
      }
      throw new Error(`${name} did not become ready in 90 s; see ${logFile}:\n${tail(logFile)}`);
    },
    async kill(signal) {
      if (!child) return;
      meant = true;
      child.kill(signal);
      await exited;
    },
  };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

export async function startFaultStack(name: string): Promise<FaultStack> {
  const dir = join(TEST_DIR, 'faults', `${name}-${randomUUID().slice(0, 6)}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const crashes: string[] = [];
  const stops: (() => Promise<void>)[] = [];

  const pgPort = await freePort();
  const pg = managed(
    'postgres',
    'tests/faults/postgres-process.ts',
    { PATH: process.env.PATH, HOME: process.env.HOME },
    join(dir, 'postgres.log'),
    async (since) => since.includes('ready'),
    crashes,
    [join(dir, 'postgres'), String(pgPort)],
  );
  await pg.start();
  stops.push(() => pg.kill('SIGTERM'));
  // The test's own hands are a superuser's (it kills connections); the worker and the API log in as the service.
  const pgUrl = `postgres://postgres:postgres@127.0.0.1:${pgPort}/handoff`;
  const { ownerUrl, serviceUrl } = await setUpRoles(pgUrl, newLogins());
  await migrateDatabase(ownerUrl, serviceUrl);
  const database: DatabaseHandle = openDatabase(pgUrl, { onPoolError: () => undefined });
  stops.push(() => database.close());

  const temporalBinary = findTemporalTool('temporal');
  if (!temporalBinary) throw new Error('the temporal CLI is missing: npm run tools');
  const temporalPort = await freePort();
  const temporalOptions = {
    binary: temporalBinary,
    port: temporalPort,
    dbFile: join(dir, 'temporal.db'),
    logFile: join(dir, 'temporal.log'),
  };
  let temporal: RunningTemporal = await startTemporalDevServer(temporalOptions);
  stops.push(() => temporal.stop());

  const mail = new Map<string, number>();
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      let raw = '';
      stream.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
      stream.on('end', () => {
        const id = /^message-id:\s*(\S+)/im.exec(raw)?.[1] ?? `no-id-${randomUUID()}`;
        mail.set(id, (mail.get(id) ?? 0) + 1);
        callback();
      });
    },
  });
  const smtpPort = await freePort();
  await new Promise<void>((done) => smtp.listen(smtpPort, '127.0.0.1', done));
  stops.push(() => new Promise<void>((done) => smtp.close(() => done())));

  const apiPort = await freePort();
  const taskQueue = `faults-${randomUUID().slice(0, 8)}`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'test',
    PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
    LOG_LEVEL: 'warn',
    DATABASE_URL: serviceUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    HOST: '127.0.0.1',
    PORT: String(apiPort),
    SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    OUTBOX_POLL_SECONDS: '1',
    RATE_LIMIT_PER_MINUTE: '100000',
    RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '1000000',
    DATA_DIR: dir,
    WORKFLOW_BUNDLE: testContext().workflowBundlePath,
  };
  const apiUrl = `http://127.0.0.1:${apiPort}`;

  const worker = managed(
    'worker',
    'worker/main.ts',
    { ...env, LOG_LEVEL: 'info' },
    join(dir, 'worker.log'),
    // Ready once it says it polls (what it wrote since this start).
    async (since) => since.includes('worker polling'),
    crashes,
  );
  const api = managed(
    'api',
    'api/main.ts',
    env,
    join(dir, 'api.log'),
    async () => (await fetch(`${apiUrl}/health`).catch(() => null)) !== null,
    crashes,
  );
  await worker.start();
  await api.start();
  // The processes go first on close: they would count the servers' end as a crash of their own otherwise.
  stops.push(() => worker.kill('SIGKILL'));
  stops.push(() => api.kill('SIGKILL'));

  const tokens = new Map<string, string>();
  const stack: FaultStack = {
    dir,
    db: database.db,
    apiUrl,
    taskQueue,
    temporalAddress: temporal.address,
    mail,
    crashes,
    worker,
    api,
    request: (method, path, body, token) => send(apiUrl, method, path, { body, token: token ?? null }),
    async token(role, agencyId, userId = `${role}-1`) {
      const key = `${agencyId}|${userId}|${role}`;
      if (!tokens.has(key)) {
        await upsertUser(database.db, { id: userId, role: role as never, agencyId, name: userId });
        tokens.set(key, (await createToken(database.db, { agencyId, userId }, { label: 'faults' })).token);
      }
      return tokens.get(key)!;
    },
    temporal: {
      kill: (signal) => temporal.kill!(signal),
      async start() {
        temporal = await startTemporalDevServer(temporalOptions);
      },
    },
    postgres: {
      stop: () => pg.kill('SIGTERM'),
      start: () => pg.start(),
      async terminateConnections() {
        const { rows } = await sql<{ n: string }>`
          select count(*) filter (where pg_terminate_backend(pid)) as n from pg_stat_activity
          where datname = 'handoff' and pid <> pg_backend_pid() and backend_type = 'client backend'`.execute(
          database.db,
        );
        return Number(rows[0]?.n ?? 0);
      },
    },
    async close() {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
    },
  };
  return stack;
}
