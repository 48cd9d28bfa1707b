import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { sql } from 'kysely';
import type { z } from 'zod';
import { nonRetryableDataErrors } from '../activities/failures';
import * as s from '../api/schemas';
import { type Db, openDatabase } from '../db/database';
import { testContext } from './support/context';
import { type ApiResponse, type TestActor, send, tokenFor, withApp } from './support/stack';

const LONE_SURROGATES = ['abc\ud800', '\udc00abc', 'a\ude00\ud83db'];
const STAFF: TestActor = { id: 'staff-hostile', role: 'staff', agencyId: 'agency-hostile' };
const ADMIN: TestActor = { id: 'admin-hostile', role: 'admin', agencyId: 'agency-hostile' };

function issuesOf(schema: z.ZodType, body: unknown): { path: string; message: string }[] {
  const result = schema.safeParse(body);
  return result.success ? [] : result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

function withField(body: Record<string, unknown>, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(body);
  let node: any = copy;
  for (const key of path.slice(0, -1)) node = node[key];
  node[path.at(-1)!] = value;
  return copy;
}

const candidate = { providerId: 'northside', name: 'Northside Counseling', external: true, contact: '555-0100' };
const client = {
  agencyId: 'agency-hostile',
  name: 'Sam Rivera',
  counselorId: 'counselor-1',
  active: true,
  riskFlags: [],
  contact: { channels: [], noContactAtHome: false },
  hasSubstanceUseRecords: false,
  needs: [],
};
const clinician = {
  agencyId: 'agency-hostile',
  name: 'Dr. Lee',
  capacity: 10,
  specialties: [],
  active: true,
  contact: '555-0101',
};

// Every free-text field of the API, with a body that is valid but for it.
const TEXT_FIELDS: [string, z.ZodType, Record<string, unknown>, (string | number)[]][] = [
  ['review rationale', s.reviewBody, { decision: 'approve', rationale: 'planned' }, ['rationale']],
  ['revision rationale', s.reviseBody, { rationale: 'revised' }, ['rationale']],
  [
    'waiver rationale',
    s.waiveConversationBody,
    { basis: 'client_initiated', rationale: 'asked to end' },
    ['rationale'],
  ],
  ['cancel reason', s.cancelCaseBody, { reason: 'the move fell through' }, ['reason']],
  ['safety plan documentRef', s.safetyPlanBody, { documentRef: 'EHR note 42' }, ['documentRef']],
  ...(['disclosed', 'purpose'] as const).map((field): (typeof TEXT_FIELDS)[number] => [
    `consent ${field}`,
    s.consentBody,
    {
      recipientProviderId: 'northside',
      disclosed: 'treatment summary',
      purpose: 'continuity of care',
      expiresOn: '2030-06-01',
      coversSubstanceUseRecords: false,
      revocable: true,
      signedOn: '2026-11-23',
    },
    [field],
  ]),
  ...(['name', 'contact'] as const).map((field): (typeof TEXT_FIELDS)[number] => [
    `referral candidate ${field}`,
    s.proposeReferralBody,
    { candidates: [candidate] },
    ['candidates', 0, field],
  ]),
  ['referral withdrawal reason', s.withdrawReferralBody, { reason: 'client moved' }, ['reason']],
  [
    'referral decline reason',
    s.referralResponseBody,
    { response: 'declined', declinedBy: 'provider', declineReason: 'full' },
    ['declineReason'],
  ],
  ['client name', s.clientBody, client, ['name']],
  ...(['name', 'contact'] as const).map((field): (typeof TEXT_FIELDS)[number] => [
    `clinician ${field}`,
    s.clinicianBody,
    clinician,
    [field],
  ]),
  ...(['name', 'contact'] as const).map((field): (typeof TEXT_FIELDS)[number] => [
    `provider ${field}`,
    s.providerBody,
    { name: 'Northside', contact: '555-0100', specialties: [] },
    [field],
  ]),
  ...(['agencyName', 'agencyPhone'] as const).map((field): (typeof TEXT_FIELDS)[number] => [
    `policy ${field}`,
    s.policyBody,
    { agencyName: 'Handoff Counseling', agencyPhone: '555-0199', policy: {} },
    [field],
  ]),
];

describe('text fields refuse what PostgreSQL cannot store', () => {
  test.each(TEXT_FIELDS)(
    'when the %s holds a lone surrogate or a NUL, then it is refused naming the field, and an emoji still passes',
    (_name, schema, body, path) => {
      const field = path.join('.');
      expect(issuesOf(schema, body)).toEqual([]);
      expect(issuesOf(schema, withField(body, path, 'Sam 😀 Rivera'))).toEqual([]);
      for (const value of LONE_SURROGATES) {
        expect(issuesOf(schema, withField(body, path, value))).toEqual([
          { path: field, message: expect.stringMatching(/lone surrogate/) },
        ]);
      }
      expect(issuesOf(schema, withField(body, path, 'a\u0000b'))).toEqual([
        { path: field, message: expect.stringMatching(/control characters/) },
      ]);
    },
  );
});

describe('routes that read the body first answer 400 for a lone surrogate', () => {
  test('when a client is PUT with a lone surrogate in its name, then 400 names body.name and nothing is written', async () => {
    await withApp({}, async (url, db) => {
      const token = await tokenFor(db, STAFF);
      const clientId = `client-${randomUUID().slice(0, 8)}`;
      const res = await send<any>(url, 'PUT', `/v1/clients/${clientId}`, {
        token,
        body: { ...client, name: 'Sam\ud800 Rivera' },
      });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body.errors).toEqual([{ field: 'body.name', message: expect.stringMatching(/lone surrogate/) }]);
      const rows = await db.selectFrom('clients').select('client_id').where('client_id', '=', clientId).execute();
      expect(rows).toEqual([]);
    });
  });

  test('when a clinician is PUT with a lone surrogate in its contact, then 400 names body.contact', async () => {
    await withApp({}, async (url, db) => {
      const token = await tokenFor(db, STAFF);
      const res = await send<any>(url, 'PUT', `/v1/clinicians/clinician-${randomUUID().slice(0, 8)}`, {
        token,
        body: { ...clinician, contact: '\udc00555-0101' },
      });
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([{ field: 'body.contact', message: expect.stringMatching(/lone surrogate/) }]);
    });
  });

  test('when the agency policy is PUT with a lone surrogate in agencyName, then 400 names body.agencyName', async () => {
    await withApp({}, async (url, db) => {
      const token = await tokenFor(db, ADMIN);
      const res = await send<any>(url, 'PUT', '/v1/agencies/agency-hostile/policy', {
        token,
        body: { agencyName: 'Handoff\ud800', agencyPhone: '555-0199', policy: {} },
      });
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([{ field: 'body.agencyName', message: expect.stringMatching(/lone surrogate/) }]);
      const row = await db
        .selectFrom('agency_policies')
        .select('agency_name')
        .where('agency_id', '=', 'agency-hostile')
        .executeTakeFirst();
      expect(row).toBeUndefined();
    });
  });
});

describe('a request Express cannot read is a 4xx problem, never a 500', () => {
  const SECRET = 'Sam Rivera, 555-0100';

  async function post(headers: Record<string, string>, body: string): Promise<ApiResponse> {
    let answer: ApiResponse | undefined;
    await withApp({}, async (url, db) => {
      const token = await tokenFor(db, STAFF);
      answer = await send<any>(url, 'POST', '/v1/cases', { token, headers, body });
    });
    return answer!;
  }

  test('when the body says gzip but is not, then 400 in our words, without the body', async () => {
    const res = await post({ 'content-type': 'application/json', 'content-encoding': 'gzip' }, SECRET);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body.detail).toMatch(/Content-Encoding/);
    expect(JSON.stringify(res.body)).not.toContain('Sam Rivera');
  });

  test('when the JSON charset is EBCDIC, then 415', async () => {
    const res = await post({ 'content-type': 'application/json; charset=ebcdic' }, JSON.stringify({ note: SECRET }));
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ title: 'Unsupported Media Type', detail: expect.stringMatching(/UTF-8/) });
  });

  test('when the Content-Encoding is one the API does not speak, then 415', async () => {
    const res = await post({ 'content-type': 'application/json', 'content-encoding': 'compress' }, '{}');
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body.detail).toMatch(/gzip, deflate or br/);
  });

  test('when a path parameter has a malformed percent-escape, then 400', async () => {
    await withApp({}, async (url, db) => {
      const token = await tokenFor(db, STAFF);
      for (const path of ['/v1/clients/%E0%A4%A', '/v1/clinicians/%', `/v1/cases/%zz/cancel`]) {
        const res = await send<any>(url, path.endsWith('cancel') ? 'POST' : 'GET', path, { token });
        expect({ path, status: res.status }).toEqual({ path, status: 400 });
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(res.body.detail).toBe('the request path has a malformed percent-escape');
      }
    });
  });

  test('when a body nested 30,000 deep comes with an Idempotency-Key, then 400, not a stack overflow', async () => {
    const res = await post(
      { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      `${'['.repeat(30_000)}${']'.repeat(30_000)}`,
    );
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/nested too deeply/);
  });
});

describe('idempotent replays', () => {
  test('when a refused request is sent again with its Idempotency-Key, then the replay is still application/problem+json', async () => {
    await withApp({}, async (url, db) => {
      const token = await tokenFor(db, STAFF);
      const options = { token, headers: { 'idempotency-key': randomUUID() }, body: { kind: 'goodbye' } };
      const first = await send<any>(url, 'POST', '/v1/cases', options);
      expect(first.status).toBe(400);
      const replay = await send<any>(url, 'POST', '/v1/cases', options);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.status).toBe(400);
      expect(replay.headers.get('content-type')).toBe(first.headers.get('content-type'));
      expect(replay.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(replay.body).toEqual(first.body);
    });
  });

  test('when a refused body names a field with a NUL in it and carries an Idempotency-Key, then the refusal is a problem, kept and replayed', async () => {
    await withApp({}, async (url, db) => {
      const token = await tokenFor(db, STAFF);
      const options = { token, headers: { 'idempotency-key': randomUUID() }, body: '{"\\u0000":"x"}' };
      const first = await send<any>(url, 'POST', '/v1/cases', options);
      expect(first.status).toBe(400);
      expect(first.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const replay = await send<any>(url, 'POST', '/v1/cases', options);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.status).toBe(400);
    });
  });
});

describe('activities: data PostgreSQL refuses fails at once, without quoting it', () => {
  const SECRET = 'Sam Rivera 555-0100';
  let database: { db: Db; close(): Promise<void> };
  beforeAll(() => {
    database = openDatabase(testContext().databaseUrl, { poolSize: 2 });
  });
  afterAll(async () => {
    await database.close();
  });

  interface ProbeRow {
    note?: string | null;
    doc?: string | null;
    code?: string | null;
    n?: string | null;
    key?: number | null;
  }

  // One table of each kind of column, private to the transaction: nothing outlives the test.
  function probe(db: Db) {
    return {
      async store(rows: ProbeRow[]): Promise<number> {
        return db.transaction().execute(async (trx) => {
          await sql`create temporary table probe (note text not null, doc jsonb, code varchar(4),
            n integer, key integer unique) on commit drop`.execute(trx);
          for (const row of rows) {
            await sql`insert into probe (note, doc, code, n, key)
              values (${row.note ?? null}, ${row.doc ?? null}, ${row.code ?? null}, ${row.n ?? null}, ${row.key ?? null})`.execute(
              trx,
            );
          }
          return rows.length;
        });
      },
      async refuse(): Promise<never> {
        throw ApplicationFailure.retryable('case not written yet', 'CaseNotWrittenYet');
      },
    };
  }

  async function failureOf(run: () => Promise<unknown>): Promise<unknown> {
    try {
      await run();
    } catch (error) {
      return error;
    }
    throw new Error('the activity did not fail');
  }

  test.each([
    ['NUL in a text column', { note: `${SECRET}\u0000` }, '22021'],
    ['a lone surrogate in a jsonb column', { note: 'x', doc: JSON.stringify({ name: `${SECRET}\ud800` }) }, '22P02'],
    ['NUL in a jsonb column', { note: 'x', doc: JSON.stringify({ name: `${SECRET}\u0000` }) }, '22P05'],
    ['text where a number goes', { note: 'x', n: SECRET }, '22P02'],
    ['a value too long for its column', { note: 'x', code: SECRET }, '22001'],
    ['no value where one is required', { note: null }, '23502'],
  ])(
    'when an activity stores %s, then it fails non-retryably as InvalidInput naming only the SQLSTATE',
    async (_what, row, sqlState) => {
      const original = await failureOf(() => probe(database.db).store([row]));
      expect(original).toMatchObject({ code: sqlState });

      const failure = await failureOf(() => nonRetryableDataErrors(probe(database.db)).store([row]));
      expect(failure).toBeInstanceOf(ApplicationFailure);
      const { type, nonRetryable, message, cause, details, stack } = failure as ApplicationFailure;
      expect({ type, nonRetryable, cause, details }).toEqual({
        type: 'InvalidInput',
        nonRetryable: true,
        cause: undefined,
        details: [],
      });
      expect(message).toMatch(new RegExp(`^the data could not be stored: .+ \\(SQLSTATE ${sqlState}\\)$`));
      for (const text of [message, String(stack)]) expect(text).not.toContain('Sam');
    },
  );

  test('when the data is fine, then the activity answers as before', async () => {
    await expect(nonRetryableDataErrors(probe(database.db)).store([{ note: 'Sam 😀' }])).resolves.toBe(1);
  });

  test('when a unique key is taken (another attempt wrote it first), then the error is left to retry', async () => {
    const failure = await failureOf(() =>
      nonRetryableDataErrors(probe(database.db)).store([
        { note: 'a', key: 1 },
        { note: 'b', key: 1 },
      ]),
    );
    expect(failure).not.toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ code: '23505' });
  });

  test('when the database is unreachable, then the error is left to retry', async () => {
    const dead = openDatabase('postgres://postgres:postgres@127.0.0.1:1/none');
    try {
      const failure = await failureOf(() => nonRetryableDataErrors(probe(dead.db)).store([{ note: 'x' }]));
      expect(failure).not.toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await dead.close();
    }
  });

  test('when an activity throws an ApplicationFailure, then it passes unchanged', async () => {
    const failure = await failureOf(() => nonRetryableDataErrors(probe(database.db)).refuse());
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'CaseNotWrittenYet', nonRetryable: false });
  });
});
