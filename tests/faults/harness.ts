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
 * no WAL-off shortcuts), an SMTP peer, and workers and APIs as real processes (one of each unless asked for more),
 * each of which can be killed and started again. Its crashes are counted: a process that exits without being told
 * to is one.
 */
export interface FaultStack {
  dir: string;
  db: Db;
  /** The first API's address; `apis` has every one. */
  apiUrl: string;
  taskQueue: string;
  temporalAddress: string;
  /** Every message the SMTP peer accepted, by Message-ID. */
  mail: Map<string, number>;
  /** Processes that exited without being told to. */
  crashes: string[];
  /** Through the first API. */
  request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<ApiResponse<T>>;
  token(role: string, agencyId: string, userId?: string): Promise<string>;
  /** The first worker and the first API. */
  worker: ManagedProcess;
  api: ManagedApi;
  workers: ManagedProcess[];
  apis: ManagedApi[];
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
  /** The running process's id (a worker's Temporal identity is `<pid>@<host>`). */
  pid(): number | undefined;
}

/** An API process, with its own address. */
export interface ManagedApi extends ManagedProcess {
  url: string;
  request: FaultStack['request'];
}

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
    pid: () => child?.pid,
    async start() {
      meant = false;
      const offset = existsSync(logFile) ? statSync(logFile).size : 0;
      const fd = openSync(logFile, 'a');
      // Node itself with tsx's loader, not the tsx command: that is a parent process of its own, and a SIGKILL
      // sent to it would leave the real process running, orphaned, instead of killing it.
      const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
        cwd: ROOT,
        env,
        stdio: ['ignore', fd, fd],
      });
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

/** `worker`, `worker-2`, …: the first keeps the name (and log file) a one-worker stack has always had. */
function nth(base: string, index: number): string {
  return index === 0 ? base : `${base}-${index + 1}`;
}

/**
 * Starts the deployment: `workers` worker processes on one task queue and `apis` API processes, each on a port of
 * its own, all against the one PostgreSQL and Temporal; `env` is added to theirs.
 */
export async function startFaultStack(
  name: string,
  options: { workers?: number; apis?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<FaultStack> {
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
    SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    OUTBOX_POLL_SECONDS: '1',
    // A killed sender's messages go out again after this (5 minutes in production): the test waits for it.
    OUTBOX_LEASE_SECONDS: '20',
    RATE_LIMIT_PER_MINUTE: '100000',
    RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '1000000',
    DATA_DIR: dir,
    WORKFLOW_BUNDLE: testContext().workflowBundlePath,
    ...options.env,
  };

  const workers = Array.from({ length: options.workers ?? 1 }, (_, i) =>
    managed(
      nth('worker', i),
      'worker/main.ts',
      { ...env, LOG_LEVEL: 'info' },
      join(dir, `${nth('worker', i)}.log`),
      // Ready once it says it polls (what it wrote since this start).
      async (since) => since.includes('worker polling'),
      crashes,
    ),
  );
  const apis: ManagedApi[] = [];
  for (let i = 0; i < (options.apis ?? 1); i++) {
    const url = `http://127.0.0.1:${await freePort()}`;
    const api = managed(
      nth('api', i),
      'api/main.ts',
      { ...env, PORT: new URL(url).port },
      join(dir, `${nth('api', i)}.log`),
      async () => (await fetch(`${url}/health`).catch(() => null)) !== null,
      crashes,
    );
    apis.push({
      ...api,
      url,
      request: (method, path, body, token, headers) =>
        send(url, method, path, { body, token: token ?? null, ...(headers ? { headers } : {}) }),
    });
  }
  // The processes go first on close: they would count the servers' end as a crash of their own otherwise.
  for (const p of [...workers, ...apis]) stops.push(() => p.kill('SIGKILL'));
  await Promise.all(workers.map((w) => w.start()));
  await Promise.all(apis.map((a) => a.start()));

  const tokens = new Map<string, string>();
  const stack: FaultStack = {
    dir,
    db: database.db,
    apiUrl: apis[0]!.url,
    taskQueue,
    temporalAddress: temporal.address,
    mail,
    crashes,
    worker: workers[0]!,
    api: apis[0]!,
    workers,
    apis,
    request: apis[0]!.request,
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
