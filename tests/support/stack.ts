import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import pino from 'pino';
import { createActivities } from '../../activities';
import type { EncryptingDataConverter } from '../../codec';
import { type AppDeps, createApp } from '../../api/app';
import { type Db, openDatabase } from '../../db/database';
import { createToken, upsertUser } from '../../db/users';
import type { Actor } from '../../domain/case';
import { openTemporalClient } from '../../temporal';
import { testContext } from './context';
import { testDataConverter } from './payload-keys';

/** The Temporal UI's origin, as the test stack's codec endpoint lets it call (CODEC_CORS_ORIGINS). */
export const TEMPORAL_UI_ORIGIN = 'http://127.0.0.1:8233';

/** The token the test stack's /metrics is scraped with. */
export const METRICS_TOKEN = 'test-metrics-token-0123456789';

/**
 * Every test file's requests come from 127.0.0.1 and are counted in the one database, so the per-address limit
 * would throttle the suite as a whole; the test of that limit gives each test an address of its own instead.
 */
const LOOPBACK_BUDGET = 1_000_000;

let runtimeInstalled = false;
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
  runtimeInstalled = true;
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface TestStack {
  db: Db;
  client: Client;
  taskQueue: string;
  url: string;
  /** As `actor` (staff-1 of agency-1 unless given); `actor: null` sends no token. */
  request<T = any>(
    method: string,
    path: string,
    options?: { body?: unknown; actor?: TestActor | null; headers?: Record<string, string> },
  ): Promise<ApiResponse<T>>;
  /** Stops the worker and starts another, on the given workflow bundle (a deploy) or today's code. */
  restartWorker: (workflowBundlePath?: string) => Promise<void>;
  close: () => Promise<void>;
}

/** A test user: an actor, in an agency (agency-1 unless said otherwise). */
export type TestActor = Actor & { agencyId?: string };

/** The same actor, acting for another agency. */
export function inAgency(actor: TestActor, seed: { agencyId: string }): TestActor {
  return { ...actor, agencyId: seed.agencyId };
}

const tokens = new Map<string, string>();

/** A bearer token for the actor, creating the user and the token the first time. */
export async function tokenFor(db: Db, actor: TestActor): Promise<string> {
  const agencyId = actor.agencyId ?? 'agency-1';
  const key = `${actor.id}|${actor.role}|${agencyId}`;
  const known = tokens.get(key);
  if (known) return known;
  await upsertUser(db, { id: actor.id, role: actor.role, agencyId, name: actor.id });
  const { token } = await createToken(db, { agencyId, userId: actor.id }, { label: 'test' });
  tokens.set(key, token);
  return token;
}

/** Sends a request to a listening app, with the given bearer token (or none). */
export async function send<T>(
  url: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string | null; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(`${url}${path}`, {
    method,
    headers,
    body:
      options.body === undefined
        ? undefined
        : typeof options.body === 'string'
          ? options.body
          : JSON.stringify(options.body),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body: body as T };
}

export async function listen(deps: AppDeps): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = createApp(deps).listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * An app of its own (no worker) wired to the given PostgreSQL and Temporal, which may be dead addresses,
 * for the time of `run`; the suite's servers unless told otherwise.
 */
export async function withApp(
  options: {
    databaseUrl?: string;
    temporalAddress?: string;
    rateLimitPerMinute?: number;
    rateLimitPerAddressPerMinute?: number;
    idempotencyKeyHours?: number;
    workerTaskQueue?: string;
    devTokens?: boolean;
  },
  run: (url: string, db: Db) => Promise<void>,
): Promise<void> {
  const context = testContext();
  const database = openDatabase(options.databaseUrl ?? context.databaseUrl);
  const dataConverter = testDataConverter();
  const temporal = openTemporalClient({ address: options.temporalAddress ?? context.temporalAddress }, 'default', {
    dataConverter,
    failFast: true,
  });
  const api = await listen({
    db: database.db,
    copyOut: database.copyOut,
    temporal: temporal.client,
    taskQueue: options.workerTaskQueue ?? 'unused',
    logger: pino({ level: 'silent' }),
    health: {
      postgres: database.ping,
      temporal: temporal.ping,
      ...(options.workerTaskQueue ? { worker: () => temporal.workerPolling(options.workerTaskQueue!) } : {}),
    },
    rateLimitPerMinute: options.rateLimitPerMinute,
    rateLimitPerAddressPerMinute: options.rateLimitPerAddressPerMinute ?? LOOPBACK_BUDGET,
    idempotencyKeyHours: options.idempotencyKeyHours,
    devTokens: options.devTokens,
    payloadCodec: dataConverter.payloadCodecs[0],
  });
  try {
    await run(api.url, database.db);
  } finally {
    await api.close();
    await database.close();
    await temporal.close();
  }
}

/**
 * A real stack for one test file: the suite's PostgreSQL and Temporal, a worker on its own
 * task queue running the bundled workflows with real activities, and the API listening on a free port.
 * With a database and namespace of its own (`isolatedServices`), what it does is all a reconcile sees; with a
 * Temporal server of its own (`temporalAddress`), all that server holds.
 */
export async function startStack(
  options: {
    databaseUrl?: string;
    namespace?: string;
    temporalAddress?: string;
    /** Another stack's queue: this one takes over its cases (as a deploy does). */
    taskQueue?: string;
    /** The suite's key unless given (a key rotation). */
    dataConverter?: EncryptingDataConverter;
    auditAnchorFile?: string;
    rateLimitPerMinute?: number;
    /** The workflow code the worker runs (another release's bundle); today's unless given. */
    workflowBundlePath?: string;
  } = {},
): Promise<TestStack> {
  quietRuntime();
  const context = testContext();
  const taskQueue = options.taskQueue ?? `test-${randomUUID()}`;
  const namespace = options.namespace ?? 'default';
  const database = openDatabase(options.databaseUrl ?? context.databaseUrl);
  const dataConverter = options.dataConverter ?? testDataConverter();
  const temporalAddress = options.temporalAddress ?? context.temporalAddress;
  const temporal = openTemporalClient({ address: temporalAddress }, namespace, { dataConverter });
  const nativeConnection = await NativeConnection.connect({ address: temporalAddress });
  const createWorker = (workflowBundlePath = options.workflowBundlePath ?? context.workflowBundlePath) =>
    Worker.create({
      connection: nativeConnection,
      namespace,
      taskQueue,
      dataConverter,
      workflowBundle: { codePath: workflowBundlePath },
      activities: createActivities({
        db: database.db,
        temporal: temporal.client,
        taskQueue,
        ...(options.auditAnchorFile ? { auditAnchorFile: options.auditAnchorFile } : {}),
      }),
    });
  let worker = await createWorker();
  let running = worker.run();
  const api = await listen({
    db: database.db,
    copyOut: database.copyOut,
    temporal: temporal.client,
    taskQueue,
    logger: pino({ level: process.env.TEST_LOG ?? 'silent' }),
    health: { postgres: database.ping, temporal: temporal.ping, worker: () => temporal.workerPolling(taskQueue) },
    metricsToken: METRICS_TOKEN,
    rateLimitPerMinute: options.rateLimitPerMinute,
    rateLimitPerAddressPerMinute: LOOPBACK_BUDGET,
    payloadCodec: dataConverter.payloadCodecs[0],
    codecCorsOrigins: [TEMPORAL_UI_ORIGIN],
  });
  return {
    db: database.db,
    client: temporal.client,
    taskQueue,
    url: api.url,
    request: async (method, path, options = {}) => {
      const actor = options.actor === undefined ? { id: 'staff-1', role: 'staff' as const } : options.actor;
      const token = actor ? await tokenFor(database.db, actor) : null;
      return send(api.url, method, path, { body: options.body, headers: options.headers, token });
    },
    async restartWorker(workflowBundlePath?: string) {
      // As a crash or deploy would: the worker goes away mid-work and a new one picks up.
      worker.shutdown();
      await running;
      worker = await createWorker(workflowBundlePath);
      running = worker.run();
    },
    async close() {
      await api.close();
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await temporal.close();
      await database.close();
    },
  };
}

/** Polls until `probe` returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
