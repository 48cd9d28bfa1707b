import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { brotliCompressSync, constants as zlib, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { sql } from 'kysely';
import pino from 'pino';
import { type AppDeps, createApp } from '../api/app';
import { openApiDocument } from '../api/openapi';
import { type DatabaseHandle, openDatabase } from '../db/database';
import type { Role } from '../domain/case';
import { openTemporalClient } from '../temporal';
import { TEST_DIR, testContext } from './support/context';
import { type FreshDatabase, freshDatabase } from './support/isolated';
import { testDataConverter } from './support/payload-keys';
import { type TestActor, listen, tokenFor } from './support/stack';

/*
 * Hostile requests to every route of the app, as every role, against a database of this file's own (other test
 * files share the suite's, and would change it under the snapshot). No answer may be a 5xx or take more than
 * REQUEST_TIMEOUT_MS, every error must be a problem+json, and nothing may change but the audit trail, the
 * idempotency keys and the rate limit's counters.
 */

const AGENCY = 'agency-fuzz';
const ROLES: Role[] = ['staff', 'counselor', 'clinical_director', 'compliance', 'admin'];
const ACTORS: TestActor[] = ROLES.map((role) => ({ id: `fuzz-${role}`, role, agencyId: AGENCY }));
const WRITABLE = new Set([
  'audit_events',
  'audit_pending',
  'audit_chain',
  'audit_checkpoints',
  'idempotency_keys',
  'rate_limit_windows',
]);
// Made before the fuzzing and never a fuzzed path parameter: a token for a seeded user would be a real write.
const SEEDED = 'seed-1';
const REQUEST_TIMEOUT_MS = 10_000;
const CONCURRENCY = 12;
const BATCH = 50;
const BATCHES = 110;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonSchema = Record<string, any>;

interface Route {
  method: string;
  path: string;
  /** The JSON Schema of its body, from the OpenAPI document. */
  body?: JsonSchema;
}

interface HostileRequest {
  method: string;
  route: Route;
  url: string;
  /** An index into ACTORS, or a header that is no valid token. */
  auth: number | 'none' | 'garbage';
  headers: Record<string, string>;
  body?: Buffer;
  /** Shown in a failure: the body before it was encoded. */
  text?: string;
  /** Sent as the route expects, with a body valid but for one value no field may take: only a 4xx will do. */
  mustRefuse: boolean;
}

let database: DatabaseHandle;
let temporal: ReturnType<typeof openTemporalClient>;
let api: { url: string; close(): Promise<void> };
let fuzzDatabase: FreshDatabase | undefined;
let taskQueue: string;
let tokens: string[];
let routes: Route[];
let components: Record<string, JsonSchema>;

beforeAll(async () => {
  const context = testContext();
  fuzzDatabase = await freshDatabase('fuzz');
  database = openDatabase(fuzzDatabase.databaseUrl);
  const dataConverter = testDataConverter();
  temporal = openTemporalClient({ address: context.temporalAddress }, 'default', { dataConverter });
  // No worker polls this queue: a case or transfer that started would stay visible on it.
  taskQueue = `fuzz-${randomUUID()}`;
  const deps: AppDeps = {
    db: database.db,
    copyOut: database.copyOut,
    temporal: temporal.client,
    taskQueue,
    logger: pino({ level: 'silent' }),
    health: { postgres: database.ping, temporal: temporal.ping },
    rateLimitPerMinute: 1_000_000,
    rateLimitPerAddressPerMinute: 1_000_000,
    anchorFile: join(TEST_DIR, `fuzz-anchors-${process.pid}.ndjson`),
    payloadCodec: dataConverter.payloadCodecs[0],
  };
  api = await listen(deps);
  routes = routesOf(createApp(deps));
  tokens = await Promise.all(ACTORS.map((actor) => tokenFor(database.db, actor)));
  // Something for the reads to find: one of each record, made from the same examples the fuzzing starts from.
  for (const route of routes.filter((r) => r.method === 'PUT' && r.body)) {
    const res = await fetch(`${api.url}${fill(route.path, (name) => (name === 'agencyId' ? AGENCY : SEEDED))}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokens[ROLES.indexOf('admin')]}`, 'content-type': 'application/json' },
      body: JSON.stringify(example(route.body!)),
    });
    expect(res.status).toBeLessThan(500);
  }
}, 60_000);

afterAll(async () => {
  await api?.close();
  await database?.close();
  await temporal?.close();
  await fuzzDatabase?.drop();
});

/** Every route Express knows, with its body's schema where the OpenAPI document has one. */
function routesOf(app: ReturnType<typeof createApp>): Route[] {
  const document = openApiDocument() as { paths: Record<string, Record<string, any>>; components: any };
  components = document.components.schemas;
  const found = new Map<string, Route>();
  const walk = (stack: any[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const path of [layer.route.path as string | string[]].flat()) {
          for (const method of Object.keys(layer.route.methods as object).filter((m) => m !== '_all')) {
            const operation = document.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method];
            const body = operation?.requestBody?.content?.['application/json']?.schema as JsonSchema | undefined;
            found.set(`${method} ${path}`, { method: method.toUpperCase(), path, body });
          }
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: unknown[] } }).router.stack);
  // Not a route but a file server: hostile file names too.
  found.set('get /docs/assets/:asset', { method: 'GET', path: '/docs/assets/:asset' });
  const all = [...found.values()];
  const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.keys(operations).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
  );
  expect(all.map((r) => `${r.method} ${r.path}`)).toEqual(expect.arrayContaining(documented));
  return all;
}

function fill(path: string, param: (name: string) => string): string {
  return path.replace(/:(\w+)/g, (_m, name: string) => param(name));
}

function resolve(schema: JsonSchema): JsonSchema {
  return schema.$ref ? resolve(components[String(schema.$ref).split('/').pop()!] ?? {}) : schema;
}

/** A value the schema takes (as far as its JSON Schema tells), in the fuzzing agency. */
function example(raw: JsonSchema, name = ''): Json {
  const schema = resolve(raw);
  if ('const' in schema) return schema.const;
  if (schema.enum) return schema.enum[0];
  if (schema.anyOf ?? schema.oneOf) return example((schema.anyOf ?? schema.oneOf)[0], name);
  switch (schema.type) {
    case 'object':
      return Object.fromEntries(
        Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>).map(([k, v]) => [k, example(v, k)]),
      );
    case 'array':
      return Array.from({ length: Math.max(1, schema.minItems ?? 0) }, () => example(schema.items ?? {}, name));
    case 'integer':
    case 'number':
      return schema.minimum ?? 1;
    case 'boolean':
      return true;
    case 'string': {
      if (name === 'agencyId') return AGENCY;
      if (schema.format === 'uuid') return randomUUID();
      if (schema.format === 'date') return '2031-01-15';
      if (schema.format === 'date-time') return '2031-01-15T10:00:00Z';
      const patterns = [schema.pattern, ...((schema.allOf ?? []) as JsonSchema[]).map((p) => p.pattern)]
        .filter((p): p is string => typeof p === 'string')
        .map((p) => new RegExp(p, 'u'));
      return ['UTC', 'fuzz_1', 'en-US'].find((c) => patterns.every((p) => p.test(c))) ?? 'fuzz_1';
    }
    default:
      return 'UTC';
  }
}

/** Every place in a value: each property and element, nested ones too. */
function placesIn(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const here = prefix.length > 0 ? [prefix] : [];
  if (Array.isArray(value)) return [...here, ...value.flatMap((v, i) => placesIn(v, [...prefix, i]))];
  if (value !== null && typeof value === 'object') {
    return [...here, ...Object.entries(value).flatMap(([k, v]) => placesIn(v, [...prefix, k]))];
  }
  return here;
}

function replaced(value: Json, place: (string | number)[], by: Json): Json {
  const copy = structuredClone(value);
  let node: any = copy;
  for (const key of place.slice(0, -1)) node = node[key];
  node[place.at(-1)!] = by;
  return copy;
}

const TOO_LONG = 'x'.repeat(5_000);
// Values no field of any body may take: what PostgreSQL cannot store, too long, or of no field's type.
const NO_FIELD_TAKES: Json[] = [
  'abc\ud800',
  '\udc00 Sam',
  'Sam\u0000Rivera',
  'bell\u0007',
  TOO_LONG,
  -1.5,
  ['\ud800'],
  JSON.parse('{"__proto__":{"role":"admin"},"constructor":{"prototype":{"admin":true}}}') as Json,
];

const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const shortHostileString = fc.oneof(
  fc.constantFrom(
    '\ud800',
    'abc\udfff',
    '\udc00\ud800',
    '\u0000',
    'a\u0000b',
    '\u0007\u001b[31m',
    '\u202egnp.exe',
    '\ufeff',
    '\uffff',
    '\u{10ffff}',
    'Sam 😀 Rivera',
    'Zoë Ñúñez',
    '𝕿𝖊𝖘𝖙',
    'null',
    'NaN',
    '1e309',
    '__proto__',
    'constructor',
    '../../etc/passwd',
    '%00',
    '%E0%A4%A',
    '<script>alert(1)</script>',
    "' or 1=1 --",
    '${jndi:ldap://x}',
    '',
    ' ',
  ),
  fc.string({ unit: codeUnit, maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);
const hostileString = fc.oneof(
  { weight: 9, arbitrary: shortHostileString },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 30_000 }).map((n) => 'é'.repeat(n)) },
);
const hostileKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', '', '\u0000', '\ud800', 'a.b', '$where'),
  fc.string({ maxLength: 12 }),
);
const { json: hostileJson } = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small' },
    hostileString,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(hostileKey, tie('json'), { maxKeys: 4 }),
  ),
}));
const rawBody = fc.oneof(
  fc.integer({ min: 1, max: 30_000 }).map((d) => `${'['.repeat(d)}${']'.repeat(d)}`),
  fc.integer({ min: 1, max: 6_000 }).map((d) => `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`),
  fc.constantFrom(
    '{"a":',
    '',
    'null',
    '"text"',
    '12',
    '{"__proto__":{"admin":true}}',
    '{"constructor":{"prototype":{"admin":true}}}',
    '{"a":1,"a":2}',
    '\u0000',
    '\ufeff{}',
    '{"\\ud800":"\\udc00"}',
    '{"x":"\\u0000"}',
    '[]',
    '{}',
    `"${'x'.repeat(70_000)}"`,
  ),
);

/** Percent-encodes the UTF-8 of a string (a lone surrogate becomes U+FFFD's bytes). */
function encodeBytes(value: string): string {
  return [...Buffer.from(value, 'utf8')]
    .map((b) => (/[A-Za-z0-9._~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16)}`))
    .join('');
}

const pathParam = fc.oneof(
  fc.uuid(),
  fc.constantFrom(
    '%',
    '%E0%A4%A',
    '%zz',
    '%00',
    '%C0%80',
    '%ED%A0%80',
    '%F0%9F%98',
    '%2F',
    '%2e%2e%2f%2e%2e%2fpackage.json',
    '%252F',
    '..',
    '%u0041',
    '%FF%FE',
    '%E2%80%AE',
    'UTC',
    AGENCY,
    'a'.repeat(3_000),
  ),
  shortHostileString.map(encodeBytes),
);
const query = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(
          'limit',
          'cursor',
          'counselorId',
          'caseId',
          'clientId',
          'action',
          'from',
          'format',
          '__proto__',
        ),
        fc.constantFrom('constructor[prototype][admin]', '%', '%E0%A4%A'),
        shortHostileString.map(encodeBytes),
      ),
      fc.oneof(pathParam, fc.constantFrom('-1', '1e9', '', 'csv', '2031-01-15T10:00:00Z')),
    ),
    { maxLength: 4 },
  )
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`));

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=ebcdic',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/merge-patch+json',
  '*/*',
];
const ENCODINGS = ['', 'gzip', 'deflate', 'br', 'compress', 'identity', 'x-unknown', 'gzip, deflate'];
const COMPRESS: Record<string, (b: Buffer) => Buffer> = {
  gzip: (b) => gzipSync(b, { level: 1 }),
  deflate: (b) => deflateSync(b, { level: 1 }),
  br: (b) => brotliCompressSync(b, { params: { [zlib.BROTLI_PARAM_QUALITY]: 1 } }),
};

function hostileRequest(route: Route): fc.Arbitrary<HostileRequest> {
  const bodies: fc.Arbitrary<string | undefined>[] = [
    hostileJson.map((value) => JSON.stringify(value)),
    rawBody,
    fc.constant(undefined),
  ];
  const valid = route.body ? example(route.body) : null;
  if (valid !== null && placesIn(valid).length > 0) {
    bodies.push(
      fc
        .tuple(fc.constantFrom(...placesIn(valid)), fc.constantFrom(...NO_FIELD_TAKES))
        .map(([place, value]) => JSON.stringify(replaced(valid, place, value))),
    );
  }
  return fc
    .record({
      method: fc.oneof(
        { weight: 9, arbitrary: fc.constant(route.method) },
        { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD') },
      ),
      params: fc.array(pathParam, { minLength: 3, maxLength: 3 }),
      query,
      auth: fc.oneof(
        { weight: 8, arbitrary: fc.nat({ max: ACTORS.length - 1 }) },
        { weight: 1, arbitrary: fc.constantFrom('none' as const, 'garbage' as const) },
      ),
      body: fc.oneof(...bodies),
      contentType: fc.option(fc.constantFrom(...CONTENT_TYPES), { freq: 4 }),
      encoding: fc.oneof({ weight: 3, arbitrary: fc.constant('') }, fc.constantFrom(...ENCODINGS)),
      compress: fc.boolean(),
      idempotencyKey: fc.oneof(
        { weight: 3, arbitrary: fc.constant(null) },
        fc.uuid(),
        fc.constantFrom('fuzz-fixed-key', 'a'.repeat(300), 'with space', ''),
      ),
    })
    .map((r): HostileRequest => {
      let i = 0;
      const path = fill(route.path, () => r.params[i++]!);
      const headers: Record<string, string> = {};
      if (r.contentType) headers['content-type'] = r.contentType;
      if (r.encoding) headers['content-encoding'] = r.encoding;
      if (r.idempotencyKey !== null) headers['idempotency-key'] = r.idempotencyKey;
      const text = r.method === 'GET' || r.method === 'HEAD' ? undefined : r.body;
      let body: Buffer | undefined;
      if (text !== undefined) {
        const plain = Buffer.from(text, 'utf8');
        const compress = COMPRESS[r.encoding];
        body = r.compress && compress ? compress(plain) : plain;
      }
      const request: HostileRequest = {
        method: r.method,
        route,
        url: `${path}${r.query}`,
        auth: r.auth,
        headers,
        body,
        text,
        // Another method, content type or encoding may never read the body: the snapshot says whether it was taken.
        mustRefuse: false,
      };
      // A counterexample reads as a request, not as the bytes of its body.
      return Object.assign(request, { [fc.toStringMethod]: () => shown(request) });
    });
}

/** What is wrong with the answer to a request, if anything. */
async function verdict(request: HostileRequest): Promise<string | undefined> {
  const headers = { ...request.headers };
  if (typeof request.auth === 'number') headers.authorization = `Bearer ${tokens[request.auth]}`;
  if (request.auth === 'garbage') headers.authorization = 'Bearer hk_not-a-token-at-all';
  try {
    const res = await fetch(`${api.url}${request.url}`, {
      method: request.method,
      headers,
      body: request.body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    await res.arrayBuffer();
    const type = res.headers.get('content-type') ?? '';
    if (res.status >= 500) return `answered ${res.status}`;
    // 431 comes from Node's HTTP parser (a path too long for its headers), before the app.
    if (res.status >= 400 && res.status !== 431 && !type.startsWith('application/problem+json')) {
      return `answered ${res.status} as ${type || 'no content type'}`;
    }
    if (request.mustRefuse && res.status < 400) return `took a value no field may take (${res.status})`;
    return undefined;
  } catch (error) {
    const name = (error as Error).name;
    return name === 'TimeoutError' ? `no answer in ${REQUEST_TIMEOUT_MS} ms` : `no answer: ${String(error)}`;
  }
}

function shown(request: HostileRequest): string {
  const who = typeof request.auth === 'number' ? ACTORS[request.auth]!.role : request.auth;
  const body = request.text === undefined ? '' : ` body ${JSON.stringify(request.text.slice(0, 160))}`;
  const headers = JSON.stringify(request.headers).slice(0, 200);
  return `${request.method} ${request.url.slice(0, 200)} (${request.route.method} ${request.route.path}) as ${who} ${headers}${body}`;
}

async function inPool<T, R>(items: T[], size: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await run(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: size }, worker));
  return results;
}

/** Row count and md5 of the contents of every table but the audit trail and the idempotency keys. */
async function snapshot(): Promise<Record<string, string>> {
  const { rows: tables } = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`.execute(database.db);
  const entries = await Promise.all(
    tables
      .filter(({ name }) => !WRITABLE.has(name))
      .map(async ({ name }) => {
        const { rows } = await sql<{ n: number; md5: string }>`
          select count(*)::int as n, md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) as md5
          from ${sql.table(name)} t`.execute(database.db);
        return [name, `${rows[0]!.n} rows, md5 ${rows[0]!.md5}`] as const;
      }),
  );
  return Object.fromEntries(entries);
}

async function run(requests: HostileRequest[]): Promise<{ wrong: string[]; changed: Record<string, unknown> }> {
  const before = await snapshot();
  const verdicts = await inPool(requests, CONCURRENCY, verdict);
  const after = await snapshot();
  const wrong = requests.flatMap((r, i) => (verdicts[i] ? [`${verdicts[i]}: ${shown(r)}`] : []));
  const changed = Object.fromEntries(
    Object.keys({ ...before, ...after })
      .filter((table) => before[table] !== after[table])
      .map((table) => [table, { before: before[table], after: after[table] }]),
  );
  return { wrong, changed };
}

test('when every field of every body holds a value no field may take, as every role, then each is refused and nothing is written', async () => {
  const requests = routes
    .filter((route) => route.body)
    .flatMap((route) => {
      const valid = example(route.body!);
      // But one: a Temporal payload's bytes (the codec's body) are as long as the payload, and 5,000 x is base64.
      const takes = route.path.startsWith('/v1/codec/') ? NO_FIELD_TAKES.filter((v) => v !== TOO_LONG) : NO_FIELD_TAKES;
      return placesIn(valid).flatMap((place) =>
        takes.flatMap((value) => {
          const text = JSON.stringify(replaced(valid, place, value));
          return ACTORS.map((_actor, auth): HostileRequest => ({
            method: route.method,
            route,
            // A fresh uuid is a valid id of every kind, and names nothing.
            url: fill(route.path, (name) => (name === 'agencyId' ? AGENCY : randomUUID())),
            auth,
            headers: { 'content-type': 'application/json' },
            body: Buffer.from(text),
            text,
            mustRefuse: true,
          }));
        }),
      );
    });
  const { wrong, changed } = await run(requests);
  expect(wrong).toEqual([]);
  expect(changed).toEqual({});
}, 300_000);

test('when thousands of hostile requests reach every route as every role, then none is a 5xx or hangs, and nothing but the audit trail changes', async () => {
  let sent = 0;
  const batch = fc.array(fc.oneof(...routes.map(hostileRequest)), { minLength: BATCH, maxLength: BATCH });
  await fc.assert(
    fc.asyncProperty(batch, async (requests) => {
      const { wrong, changed } = await run(requests);
      sent += requests.length;
      expect(wrong).toEqual([]);
      expect(changed).toEqual({});
    }),
    // Each failing request is named in the failure; shrinking would resend whole batches for little more.
    { numRuns: BATCHES, endOnFailure: true },
  );
  expect(sent).toBeGreaterThanOrEqual(5_000);
  const started = await temporal.client.workflow.count(`TaskQueue="${taskQueue}"`);
  expect(started.count).toBe(0);
}, 300_000);
