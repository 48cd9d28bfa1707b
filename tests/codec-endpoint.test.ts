import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Payload } from '@temporalio/common';
import { encryptingDataConverter, payloadKeyring } from '../codec';
import { loadConfig } from '../config';
import { findTemporalTool } from '../scripts/dev-services';
import { CaseDriver } from './support/cases';
import { testContext } from './support/context';
import { TEMPORAL_UI_ORIGIN, type TestActor, type TestStack, startStack, tokenFor } from './support/stack';

/** The codec endpoint: the Temporal UI and CLI open sealed payloads through it, as an admin, and every call is audited. */

const ADMIN: TestActor = { id: 'admin-1', role: 'admin' };
const COMPLIANCE: TestActor = { id: 'compliance-1', role: 'compliance' };
const DIRECTOR: TestActor = { id: 'director-1', role: 'clinical_director' };

let stack: TestStack;
let c: CaseDriver;
/** The case's history as Temporal holds it, in the codec protocol's JSON. */
let sealed: { metadata: Record<string, string>; data: string }[];

const toJson = (payloads: Payload[]) =>
  payloads.map((p) => ({
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  }));
const texts = (body: { payloads: { data: string }[] }) =>
  body.payloads.map((p) => Buffer.from(p.data, 'base64').toString('utf8')).join('\n');

beforeAll(async () => {
  stack = await startStack();
  c = await CaseDriver.open(stack, {
    kind: 'termination',
    reason: 'goals_met',
    lastDay: undefined,
    riskFlags: ['domestic_violence'],
  });
  const history = await c.handle().fetchHistory();
  const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
  const scheduled = history.events!.find((e) => e.activityTaskScheduledEventAttributes)!;
  const completed = history.events!.find((e) => e.activityTaskCompletedEventAttributes)!;
  sealed = toJson([
    ...started.input!.payloads!,
    ...scheduled.activityTaskScheduledEventAttributes!.input!.payloads!,
    ...completed.activityTaskCompletedEventAttributes!.result!.payloads!,
  ]);
});
afterAll(async () => {
  await stack.close();
});

async function codecEvents(requestId: string | null) {
  return stack.db
    .selectFrom('audit_events')
    .select(['action', 'actor_id', 'outcome', 'outcome_reason', 'after', 'agency_id'])
    .where('action', 'like', 'payloads.%')
    .$if(requestId !== null, (q) => q.where('request_id', '=', requestId))
    .execute();
}

test('when an admin posts a case’s sealed payloads to /v1/codec/decode, then they come back opened, and the audit records counts and the key, never contents', async () => {
  expect(sealed.every((p) => Buffer.from(p.metadata.encoding!, 'base64').toString() === 'binary/encrypted')).toBe(true);
  const res = await stack.request('POST', '/v1/codec/decode', {
    body: { payloads: sealed },
    actor: ADMIN,
    headers: { 'x-namespace': 'default' },
  });
  expect(res.status).toBe(200);
  const opened = texts(res.body);
  expect(opened).toContain(c.caseId);
  expect(opened).toContain('domestic_violence');
  expect(Buffer.from(res.body.payloads[0].metadata.encoding, 'base64').toString()).toBe('json/plain');

  const events = await codecEvents(res.headers.get('x-request-id'));
  expect(events).toEqual([
    {
      action: 'payloads.decoded',
      actor_id: 'admin-1',
      outcome: 'done',
      outcome_reason: null,
      agency_id: 'agency-1',
      after: { payloads: sealed.length, encrypted: sealed.length, keyIds: ['test-1'], namespace: 'default' },
    },
  ]);
});

test('when payloads are encoded through the endpoint, then they come back sealed with the service’s key and decode to what was sent', async () => {
  const plain = [{ metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: btoa('"hi"') }];
  const encoded = await stack.request('POST', '/v1/codec/encode', { body: { payloads: plain }, actor: ADMIN });
  expect(encoded.status).toBe(200);
  const [one] = encoded.body.payloads;
  expect(Buffer.from(one.metadata['encryption-key-id'], 'base64').toString()).toBe('test-1');
  const decoded = await stack.request('POST', '/v1/codec/decode', { body: encoded.body, actor: ADMIN });
  expect(decoded.body).toEqual({ payloads: plain });
  expect((await codecEvents(encoded.headers.get('x-request-id')))[0]).toMatchObject({
    action: 'payloads.encoded',
    after: { payloads: 1, encrypted: 0, keyIds: ['test-1'], namespace: null },
  });
});

test.each([
  ['compliance', COMPLIANCE],
  ['a clinical director', DIRECTOR],
])('when %s asks to decode, then 403 naming admin, nothing opened, and the refusal is audited', async (_who, actor) => {
  const res = await stack.request('POST', '/v1/codec/decode', { body: { payloads: sealed }, actor });
  expect(res.status).toBe(403);
  expect(res.body.detail).toBe(`decoding payloads is for admin; you are ${actor.role}`);
  expect(JSON.stringify(res.body)).not.toContain('domestic');
  const refused = await stack.db
    .selectFrom('audit_events')
    .select(['action', 'outcome'])
    .where('request_id', '=', res.headers.get('x-request-id'))
    .execute();
  expect(refused).toEqual([{ action: 'access.post', outcome: 'refused' }]);
});

test('when a payload is sealed with a key the service does not hold, then 422 naming that key id only, audited as refused', async () => {
  const otherKey = `retired-2025:${randomBytes(32).toString('base64')}`;
  const [foreign] = await encryptingDataConverter(
    payloadKeyring(loadConfig({ NODE_ENV: 'test', PAYLOAD_KEYS: otherKey })),
  ).payloadCodecs[0].encode([{ metadata: {}, data: new TextEncoder().encode('x') }]);
  const res = await stack.request('POST', '/v1/codec/decode', {
    body: { payloads: [...sealed, ...toJson([foreign!])] },
    actor: ADMIN,
  });
  expect(res.status).toBe(422);
  expect(res.body.detail).toBe(
    'a payload is encrypted with key "retired-2025", which this process does not hold (PAYLOAD_KEYS)',
  );
  expect(await codecEvents(res.headers.get('x-request-id'))).toEqual([
    expect.objectContaining({
      action: 'payloads.decoded',
      outcome: 'refused',
      after: {
        payloads: sealed.length + 1,
        encrypted: sealed.length + 1,
        keyIds: ['retired-2025', 'test-1'],
        namespace: null,
      },
    }),
  ]);
});

test.each([
  ['data that is not base64', { payloads: [{ data: 'not base64!' }] }, 'body.payloads.0.data'],
  ['an unknown field', { payloads: [{ data: '', externalPayloads: [] }] }, 'body.payloads.0.externalPayloads'],
  ['no payloads array', { payload: [] }, 'body.payloads'],
])(
  'when the body holds %s, then 400 naming the field, and nothing is decoded or audited',
  async (_what, body, field) => {
    const before = (await codecEvents(null)).length;
    const res = await stack.request('POST', '/v1/codec/decode', { body, actor: ADMIN });
    expect(res.status).toBe(400);
    expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
    expect((await codecEvents(null)).length).toBe(before);
  },
);

test('when X-Namespace is not a namespace name, then 400 naming the header', async () => {
  const res = await stack.request('POST', '/v1/codec/decode', {
    body: { payloads: [] },
    actor: ADMIN,
    headers: { 'x-namespace': 'default; drop' },
  });
  expect(res.status).toBe(400);
  expect(res.body.errors).toEqual([{ field: 'header.X-Namespace', message: 'a Temporal namespace name' }]);
});

test('when the Temporal UI’s page calls from its origin, then the preflight is answered before sign-in and the answer carries CORS headers; another origin gets none', async () => {
  const preflight = await fetch(`${stack.url}/v1/codec/decode`, {
    method: 'OPTIONS',
    headers: {
      origin: TEMPORAL_UI_ORIGIN,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type,x-namespace',
    },
  });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-origin')).toBe(TEMPORAL_UI_ORIGIN);
  expect(preflight.headers.get('access-control-allow-methods')).toBe('POST');
  expect(preflight.headers.get('access-control-allow-headers')).toBe('Authorization, Content-Type, X-Namespace');
  expect(preflight.headers.get('access-control-allow-credentials')).toBe('true');

  const token = await tokenFor(stack.db, ADMIN);
  const call = (origin: string) =>
    fetch(`${stack.url}/v1/codec/decode`, {
      method: 'POST',
      headers: {
        origin,
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'x-namespace': 'default',
      },
      body: JSON.stringify({ payloads: sealed }),
    });
  const fromUi = await call(TEMPORAL_UI_ORIGIN);
  expect(fromUi.status).toBe(200);
  expect(fromUi.headers.get('access-control-allow-origin')).toBe(TEMPORAL_UI_ORIGIN);
  expect(fromUi.headers.get('vary')).toMatch(/Origin/);

  const elsewhere = await call('https://elsewhere.example');
  expect(elsewhere.headers.get('access-control-allow-origin')).toBeNull();
  const otherPreflight = await fetch(`${stack.url}/v1/codec/decode`, {
    method: 'OPTIONS',
    headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' },
  });
  expect(otherPreflight.headers.get('access-control-allow-origin')).toBeNull();

  const unsigned = await fetch(`${stack.url}/v1/codec/decode`, {
    method: 'POST',
    headers: { origin: TEMPORAL_UI_ORIGIN, 'content-type': 'application/json' },
    body: JSON.stringify({ payloads: sealed }),
  });
  expect(unsigned.status).toBe(401);
  expect(unsigned.headers.get('access-control-allow-origin')).toBe(TEMPORAL_UI_ORIGIN);
});

test('when `temporal workflow show` is pointed at the endpoint with an admin’s token, then it shows the case in clear; without it, only ciphertext', async () => {
  const cli = findTemporalTool('temporal')!;
  // Not spawnSync: the CLI calls back into this process's API, which must be free to answer.
  const show = async (...extra: string[]) =>
    (
      await promisify(execFile)(
        cli,
        [
          'workflow',
          'show',
          '--workflow-id',
          `case-${c.caseId}`,
          '--address',
          testContext().temporalAddress,
          '--output',
          'json',
          ...extra,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      )
    ).stdout;
  /** What the CLI printed: every payload's encoding and data, opened from base64. */
  const readable = (stdout: string): string => {
    const found: string[] = [];
    const walk = (value: unknown): void => {
      if (!value || typeof value !== 'object') return;
      if (Array.isArray(value)) return value.forEach(walk);
      const fields = value as Record<string, unknown>;
      if (typeof fields.data === 'string' && fields.metadata && typeof fields.metadata === 'object') {
        const encoding = (fields.metadata as Record<string, string>).encoding ?? '';
        found.push(Buffer.from(encoding, 'base64').toString(), Buffer.from(fields.data, 'base64').toString());
      }
      Object.values(fields).forEach(walk);
    };
    walk(JSON.parse(stdout));
    return found.join('\n');
  };
  const plain = await show();
  expect(readable(plain)).toContain('binary/encrypted');
  expect(readable(plain)).not.toContain('domestic_violence');

  const token = await tokenFor(stack.db, ADMIN);
  const decoded = await show('--codec-endpoint', `${stack.url}/v1/codec`, '--codec-auth', `Bearer ${token}`);
  expect(readable(decoded)).not.toContain('binary/encrypted');
  expect(readable(decoded)).toContain('domestic_violence');
  expect(readable(decoded)).toContain(c.caseId);
  const events = await codecEvents(null);
  expect(
    events.some((e) => e.actor_id === 'admin-1' && (e.after as { namespace?: string }).namespace === 'default'),
  ).toBe(true);
});
