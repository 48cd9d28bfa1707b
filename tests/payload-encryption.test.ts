import { randomBytes, webcrypto } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, METADATA_ENCODING_KEY, type Payload, defaultPayloadConverter } from '@temporalio/common';
import { decode } from '@temporalio/common/lib/encoding';
import { temporal } from '@temporalio/proto';
import { encryptingDataConverter, payloadKeyring } from '../codec';
import { failureConverter } from '../codec/failure-converter';
import { EncryptionCodec, KEY_ID_METADATA, PAYLOAD_UNREADABLE } from '../codec/payload-codec';
import { type Config, loadConfig } from '../config';
import { type RunningTemporal, findTemporalTool, freePort, startTemporalDevServer } from '../scripts/dev-services';
import { COUNSELOR, CaseDriver, DIRECTOR, STAFF, release, today } from './support/cases';
import { TEST_DIR } from './support/context';
import { type TestStack, startStack } from './support/stack';

/** What Temporal is handed is sealed: a case's facts reach its history only as ciphertext, under a key that rotates. */

const key = () => randomBytes(32).toString('base64');
const KEY_A = `key-a:${key()}`;
const KEY_B = `key-b:${key()}`;

function configOf(env: Record<string, string>): Config {
  return loadConfig({ NODE_ENV: 'test', ...env });
}
function codecOf(env: Record<string, string>): EncryptionCodec {
  return encryptingDataConverter(payloadKeyring(configOf(env))).payloadCodecs[0];
}
const json = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const text = (payload: Payload): string => decode(payload.data ?? new Uint8Array());

async function refusal(run: () => Promise<unknown>): Promise<ApplicationFailure> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}

describe('the codec', () => {
  test('when a payload is sealed, then it says only binary/encrypted and its key id, and opens to the same payload', async () => {
    const codec = codecOf({ PAYLOAD_KEYS: KEY_A });
    const original = json({ riskFlags: ['domestic_violence'], email: 'someone@client.example' });
    const [sealed] = await codec.encode([original]);
    expect(Object.keys(sealed!.metadata!).sort()).toEqual([METADATA_ENCODING_KEY, KEY_ID_METADATA].sort());
    expect(decode(sealed!.metadata![METADATA_ENCODING_KEY]!)).toBe('binary/encrypted');
    expect(decode(sealed!.metadata![KEY_ID_METADATA]!)).toBe('key-a');
    expect(Buffer.from(sealed!.data!).toString('latin1')).not.toMatch(/domestic|someone|json/);
    const [opened] = await codec.decode([sealed!]);
    expect(text(opened!)).toBe(text(original));
    expect(decode(opened!.metadata![METADATA_ENCODING_KEY]!)).toBe('json/plain');
    // A fresh IV every time: the same value never seals to the same bytes.
    const [again] = await codec.encode([original]);
    expect(Buffer.from(again!.data!).equals(Buffer.from(sealed!.data!))).toBe(false);
  });

  test('when a sealed payload is opened as Temporal’s encryption samples do (iv | ciphertext | tag over the payload’s protobuf), then it reads', async () => {
    const raw = KEY_A.split(':')[1]!;
    const [sealed] = await codecOf({ PAYLOAD_KEYS: KEY_A }).encode([json('hello')]);
    const cryptoKey = await webcrypto.subtle.importKey('raw', Buffer.from(raw, 'base64'), 'AES-GCM', false, [
      'decrypt',
    ]);
    const data = sealed!.data!;
    const plain = await webcrypto.subtle.decrypt(
      { name: 'AES-GCM', iv: data.subarray(0, 12) },
      cryptoKey,
      data.subarray(12),
    );
    expect(text(temporal.api.common.v1.Payload.decode(new Uint8Array(plain)))).toBe('"hello"');
  });

  test('when a payload in clear is decoded (a history from before encryption), then it passes through unchanged', async () => {
    const clear = json({ caseId: 'c-1' });
    const [out] = await codecOf({ PAYLOAD_KEYS: KEY_A }).decode([clear]);
    expect(out).toBe(clear);
  });

  test('when keys rotate, then B seals, what A sealed still opens while A is listed, and without A it fails naming key-a only', async () => {
    const [underA] = await codecOf({ PAYLOAD_KEYS: KEY_A }).encode([json({ step: 'decision_review' })]);
    const rotated = codecOf({ PAYLOAD_KEYS: `${KEY_A},${KEY_B}`, PAYLOAD_KEY_ID: 'key-b' });
    expect(text((await rotated.decode([underA!]))[0]!)).toBe('{"step":"decision_review"}');
    const [underB] = await rotated.encode([json('new')]);
    expect(decode(underB!.metadata![KEY_ID_METADATA]!)).toBe('key-b');

    const failure = await refusal(() => codecOf({ PAYLOAD_KEYS: KEY_B }).decode([underA!]));
    expect(failure.type).toBe(PAYLOAD_UNREADABLE);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toBe(
      'a payload is encrypted with key "key-a", which this process does not hold (PAYLOAD_KEYS)',
    );
    expect(failure.message).not.toContain(KEY_A.split(':')[1]);
  });

  test('when a sealed payload is altered, then opening it fails naming its key id, without a retry', async () => {
    const codec = codecOf({ PAYLOAD_KEYS: KEY_A });
    const [sealed] = await codec.encode([json({ riskFlags: ['suicide_risk'] })]);
    const data = Uint8Array.from(sealed!.data!);
    data[20]! ^= 1;
    const failure = await refusal(() => codec.decode([{ ...sealed, data }]));
    expect(failure).toMatchObject({ type: PAYLOAD_UNREADABLE, nonRetryable: true });
    expect(failure.message).toBe(
      'a payload under key "key-a" does not open with that key: it was altered, or sealed with another',
    );
  });

  test('when a failure is converted, then its message and stack go into a payload the codec seals', async () => {
    const failure = failureConverter.errorToFailure(
      ApplicationFailure.create({ type: 'RuleViolation', message: 'a domestic-violence flag on record' }),
      defaultPayloadConverter,
    );
    expect(failure.message).not.toContain('domestic');
    expect(failure.stackTrace ?? '').not.toContain('domestic');
    const [sealed] = await codecOf({ PAYLOAD_KEYS: KEY_A }).encode([failure.encodedAttributes!]);
    expect(Buffer.from(sealed!.data!).toString('latin1')).not.toContain('domestic');
  });
});

describe('the keys', () => {
  test.each([
    ['an entry without an id', 'no-colon-here', /entry 1 is not <id>:<base64 key>/],
    ['a key that is not base64', 'k1:not base64!', /the key of "k1" is not base64/],
    ['a 16-byte key', `k1:${randomBytes(16).toString('base64')}`, /the key of "k1" is 16 bytes; AES-256 takes 32/],
    ['an id twice', `k1:${key()},k1:${key()}`, /"k1" is listed twice/],
  ])(
    'when PAYLOAD_KEYS holds %s, then the configuration is refused saying so, never echoing a key',
    (_what, value, says) => {
      let message = '';
      try {
        configOf({ PAYLOAD_KEYS: value });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(says);
      for (const part of value.split(/[:,]/).filter((p) => p.length > 8)) expect(message).not.toContain(part);
    },
  );

  test('when PAYLOAD_KEY_ID names a key PAYLOAD_KEYS does not list, then the configuration is refused', () => {
    expect(() => configOf({ PAYLOAD_KEYS: KEY_A, PAYLOAD_KEY_ID: 'key-z' })).toThrow(
      /PAYLOAD_KEY_ID: "key-z" is not one of the ids in PAYLOAD_KEYS/,
    );
  });

  test('when PAYLOAD_KEYS is unset in production, then a process refuses to start, saying what to set', () => {
    const config = loadConfig({ NODE_ENV: 'production', DATA_DIR: join(TEST_DIR, 'never-written') });
    expect(() => payloadKeyring(config)).toThrow(/^PAYLOAD_KEYS must be set in production/);
    expect(existsSync(join(TEST_DIR, 'never-written'))).toBe(false);
  });

  test('when PAYLOAD_KEYS is unset outside production, then a key is made once under DATA_DIR and every process finds it', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'handoff-keys-'));
    try {
      const first = payloadKeyring(configOf({ DATA_DIR: dataDir }));
      const second = payloadKeyring(configOf({ DATA_DIR: dataDir }));
      expect(first.encryptWith).toBe('dev');
      expect(second.keys.get('dev')!.equals(first.keys.get('dev')!)).toBe(true);
      expect(readdirSync(dataDir)).toEqual(['payload-keys']);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** Every payload in a history, with where it sits. */
function payloadsIn(value: unknown, path = ''): { path: string; payload: Payload }[] {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => payloadsIn(v, `${path}[${i}]`));
  const fields = value as Record<string, unknown>;
  if ('metadata' in fields && fields.data instanceof Uint8Array) return [{ path, payload: fields }];
  return Object.entries(fields).flatMap(([k, v]) => payloadsIn(v, path ? `${path}.${k}` : k));
}

/** Every event of every run of a workflow, as the server holds them: no codec between. */
async function rawHistories(client: Client, workflowId: string): Promise<unknown[]> {
  const { namespace } = client.options;
  const { executions } = await client.workflowService.listWorkflowExecutions({
    namespace,
    query: `WorkflowId = '${workflowId}'`,
  });
  const events: unknown[] = [];
  for (const { execution } of executions) {
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await client.workflowService.getWorkflowExecutionHistory({
        namespace,
        execution,
        ...(nextPageToken ? { nextPageToken } : {}),
      });
      events.push(...(page.history?.events ?? []));
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
  }
  return events;
}

/** A client at risk, with every kind of detail a record holds; names and addresses no other test uses. */
const CLIENT = {
  clientName: 'Marisol Quintero-Vance',
  riskFlags: ['domestic_violence'],
  hasSubstanceUseRecords: true,
  contact: {
    channels: [
      { channel: 'email', safe: true },
      { channel: 'mail', safe: false },
    ],
    noContactAtHome: true,
    email: 'marisol.qv@client.example',
    postalAddress: '41 Larkspur Lane\nSpringfield',
  },
};
/** What must never be readable in Temporal's store: the client's name, contact, risk flags and substance-use flag. */
const NEVER_IN_CLEAR = [
  'Marisol',
  'Quintero',
  'marisol.qv',
  'client.example',
  'Larkspur',
  'noContactAtHome',
  'domestic',
  'suicide',
  'relapse',
  'substance',
  'SubstanceUse',
];

/** Runs one case through every step to closed: risk gate, consent covering substance-use records, outside referral. */
async function fullCase(stack: TestStack): Promise<CaseDriver> {
  const c = await CaseDriver.open(stack, { ...CLIENT, kind: 'referral', reason: 'outside_scope', lastDay: undefined });
  await c.act('safety-plan', { documentRef: 'EHR plan 7' }, COUNSELOR);
  await c.act('safety-plan/approval', {}, DIRECTOR);
  await c.approve();
  await c.converse('accept_proposed');
  await c.act('consents', release('harborview', { coversSubstanceUseRecords: true }), STAFF);
  const provider = { providerId: 'harborview', name: 'Harborview Counseling', external: true, contact: 'intake@hv' };
  await c.act('referrals', { candidates: [provider] }, STAFF);
  const view = await c.until((v) => v.process.referrals[0]?.state === 'sent');
  const referralId: string = view.process.referrals[0].referralId;
  await c.act(`referrals/${referralId}/response`, { response: 'accepted' }, STAFF);
  await c.act(`referrals/${referralId}/appointment`, { scheduledFor: `${today(4)}T09:00:00Z` }, STAFF);
  await c.until((v) => v.step === 'follow_up');
  await c.act(`referrals/${referralId}/appointment-outcome`, { outcome: 'kept' }, COUNSELOR);
  await c.until((v) => v.status === 'closed');
  return c;
}

describe('Temporal’s own store', () => {
  let temporalServer: RunningTemporal;
  let dir: string;
  let stack: TestStack | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(TEST_DIR, 'sealed-'));
    temporalServer = await startTemporalDevServer({
      binary: findTemporalTool('temporal')!,
      port: await freePort(),
      dbFile: join(dir, 'temporal.db'),
      logFile: join(dir, 'temporal.log'),
    });
  });
  afterAll(async () => {
    await stack?.close();
    await temporalServer?.stop();
  });

  test('when a full case has run, then Temporal’s database holds no client name, flag or contact, and the history opened with the key holds the case but not its name or addresses', async () => {
    stack = await startStack({ temporalAddress: temporalServer.address });
    const c = await fullCase(stack);
    const workflowId = `case-${c.caseId}`;

    const events = await rawHistories(stack.client, workflowId);
    const payloads = payloadsIn(events);
    // Only what the server must read stays in clear: search attributes (ids and steps) and the SDK's patch markers.
    const clear = payloads.filter(
      ({ payload }) => decode(payload.metadata![METADATA_ENCODING_KEY]!) !== 'binary/encrypted',
    );
    expect(clear.map(({ path }) => path).filter((p) => !/searchAttributes|markerRecorded/.test(p))).toEqual([]);
    const opened = (await stack.client.options.dataConverter.payloadCodecs![0]!.decode(payloads.map((p) => p.payload)))
      .map(text)
      .join('\n');
    expect(opened).toContain(c.caseId);
    expect(opened).toContain('domestic_violence');
    expect(opened).toContain('"hasSubstanceUseRecords":true');
    // What the workflow never reads it is not handed: the client's name and addresses stay in PostgreSQL.
    expect(opened).toContain('"hasEmail":true');
    expect(opened).not.toMatch(/Marisol|Quintero|marisol\.qv|Larkspur/);

    await stack.close();
    stack = undefined;
    await temporalServer.stop();
    const store = readdirSync(dir)
      .filter((f) => f.startsWith('temporal.db'))
      .map((f) => readFileSync(join(dir, f)).toString('latin1'))
      .join('\n');
    // The scan reads what the server wrote: the workflow id is there, in clear.
    expect(store).toContain(workflowId);
    const found = NEVER_IN_CLEAR.filter((word) => store.toLowerCase().includes(word.toLowerCase()));
    expect(found).toEqual([]);
  });
});

describe('a key rotation on a running case', () => {
  test('when a case started under key A goes on under B (with A still listed), then it runs to its next step, and without A its history does not open, naming key A', async () => {
    const underA = encryptingDataConverter(payloadKeyring(configOf({ PAYLOAD_KEYS: KEY_A })));
    const first = await startStack({ dataConverter: underA });
    const c = await CaseDriver.open(first, { kind: 'termination', reason: 'goals_met', lastDay: undefined });
    await c.approve();
    await first.close();

    const rotated = encryptingDataConverter(
      payloadKeyring(configOf({ PAYLOAD_KEYS: `${KEY_A},${KEY_B}`, PAYLOAD_KEY_ID: 'key-b' })),
    );
    const second = await startStack({ dataConverter: rotated, taskQueue: first.taskQueue });
    try {
      const driver = new CaseDriver(second, c.caseId, c.agencyId, c.clientId);
      await driver.converse('accept_proposed');
      await driver.until((v) => v.step === 'referral_handoff');
      const sealedWith = new Set(
        payloadsIn(await rawHistories(second.client, `case-${c.caseId}`))
          .map(({ payload }) => payload.metadata?.[KEY_ID_METADATA])
          .filter((id): id is Uint8Array => !!id)
          .map(decode),
      );
      expect([...sealedWith].sort()).toEqual(['key-a', 'key-b']);

      const withoutA = encryptingDataConverter(payloadKeyring(configOf({ PAYLOAD_KEYS: KEY_B }))).payloadCodecs[0];
      const history = await second.client.workflow.getHandle(`case-${c.caseId}`).fetchHistory();
      const failure = await refusal(() => withoutA.decode(payloadsIn(history).map((p) => p.payload)));
      expect(failure.message).toBe(
        'a payload is encrypted with key "key-a", which this process does not hold (PAYLOAD_KEYS)',
      );
    } finally {
      await second.close();
    }
  });
});
