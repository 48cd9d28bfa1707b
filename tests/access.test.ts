import { randomUUID } from 'node:crypto';
import { createToken, upsertUser } from '../db/users';
import type { Role } from '../domain/case';
import { COUNSELOR, CaseDriver, caseBody, putClient } from './support/cases';
import {
  METRICS_TOKEN,
  type TestActor,
  type TestStack,
  eventually,
  send,
  startStack,
  tokenFor,
  withApp,
} from './support/stack';

let stack: TestStack;
let own: CaseDriver;
let others: CaseDriver;
beforeAll(async () => {
  stack = await startStack();
  own = await CaseDriver.open(stack, { counselorId: COUNSELOR.id });
  others = await CaseDriver.open(stack, { counselorId: 'counselor-9' });
});
afterAll(async () => {
  await stack.close();
});

const ROLES: Role[] = ['staff', 'counselor', 'clinical_director', 'compliance', 'admin'];
const ACTORS: Record<Role, TestActor> = {
  staff: { id: 'staff-1', role: 'staff' },
  counselor: COUNSELOR,
  clinical_director: { id: 'director-1', role: 'clinical_director' },
  compliance: { id: 'compliance-1', role: 'compliance' },
  admin: { id: 'admin-1', role: 'admin' },
};

/**
 * The access matrix, written out by hand from the README (not derived from the code it checks).
 * A: allowed (the request gets past access control: here a 200, or a 400 for its deliberately empty body);
 * D: 403, the role may not do this at all. A counselor acting on another counselor's case gets 404.
 */
const MATRIX: [string, string, string][] = [
  // method+path (case routes use :case)   staff counselor director compliance admin
  ['GET /v1/cases/:case', '', 'A A A A D'],
  ['POST /v1/cases', '', 'A A A D D'],
  ['POST /v1/cases/:case/review', '', 'D D A D D'],
  ['POST /v1/cases/:case/revision', '', 'D A A D D'],
  ['POST /v1/cases/:case/risk-flags', '', 'A A A D D'],
  ['POST /v1/cases/:case/safety-plan', '', 'D A A D D'],
  ['POST /v1/cases/:case/safety-plan/approval', 'x', 'D D A D D'],
  ['POST /v1/cases/:case/conversation', '', 'D A A D D'],
  ['POST /v1/cases/:case/outreach-attempts', '', 'D A A D D'],
  ['POST /v1/cases/:case/conversation/waiver', '', 'D D A D D'],
  ['POST /v1/cases/:case/referrals', '', 'A A A D D'],
  ['POST /v1/cases/:case/referrals/:ref/response', '', 'A A A D D'],
  ['POST /v1/cases/:case/referrals/:ref/appointment', '', 'A A A D D'],
  ['POST /v1/cases/:case/referrals/:ref/appointment-outcome', '', 'A A A D D'],
  ['POST /v1/cases/:case/referrals/:ref/withdrawal', '', 'A D A D D'],
  ['POST /v1/cases/:case/consents', '', 'A A A D D'],
  ['POST /v1/cases/:case/consents/:consent/revocation', 'x', 'A A A D D'],
  ['POST /v1/cases/:case/engagement', '', 'D A A D D'],
  ['POST /v1/cases/:case/cancel', '', 'A D A D D'],
  ['PUT /v1/clients/someone', '', 'A D A D A'],
  ['PUT /v1/agencies/agency-1/policy', '', 'D D D D A'],
  ['PUT /v1/users/someone', '', 'D D D D A'],
  ['POST /v1/users/someone/tokens', 'x', 'D D D D A'],
];

describe('the access matrix', () => {
  for (const [route, bodyKind, row] of MATRIX) {
    const expected = row.split(' ');
    for (const [index, role] of ROLES.entries()) {
      for (const whose of route.includes(':case') ? (['own', 'others'] as const) : (['none'] as const)) {
        const want = expected[index]!;
        test(`${route} as ${role}${whose === 'none' ? '' : ` on ${whose} case`}: ${want}`, async () => {
          const [method, template] = route.split(' ') as [string, string];
          const caseId = whose === 'others' ? others.caseId : own.caseId;
          const path = template
            .replace(':case', caseId)
            .replace(':ref', randomUUID())
            .replace(':consent', randomUUID());
          // An empty body: allowed requests stop at validation (400) and change nothing. Bodies marked x are
          // legitimately empty, so those requests are real (and refused or answered by the workflow).
          const res = await stack.request(method, path, {
            actor: ACTORS[role],
            ...(method === 'GET' ? {} : { body: {} }),
          });
          const hidden = whose === 'others' && role === 'counselor' && want === 'A';
          if (want === 'D') expect(res.status).toBe(403);
          else if (hidden) expect(res.status).toBe(404);
          else {
            expect([401, 403].includes(res.status)).toBe(false);
            if (bodyKind !== 'x' && method !== 'GET') expect(res.status).toBe(400);
            if (method === 'GET') expect(res.status).toBe(200);
          }
        });
      }
    }
  }
});

describe('tokens', () => {
  test('when the token is missing, malformed, unknown, expired or revoked, then 401 says which', async () => {
    const path = `/v1/cases/${own.caseId}`;
    const missing = await send<any>(stack.url, 'GET', path);
    expect(missing.status).toBe(401);
    expect(missing.body.detail).toMatch(/Authorization: Bearer/);
    const malformed = await send<any>(stack.url, 'GET', path, { headers: { authorization: 'Basic abc' } });
    expect(malformed.body.detail).toMatch(/must be "Bearer <token>"/);
    const unknown = await send<any>(stack.url, 'GET', path, { token: 'hk_notarealtoken12345' });
    expect(unknown.body.detail).toMatch(/not known/);

    await upsertUser(stack.db, { id: 'staff-exp', role: 'staff', agencyId: 'agency-1', name: 'x' });
    const expired = await createToken(stack.db, { agencyId: 'agency-1', userId: 'staff-exp' });
    await stack.db
      .updateTable('api_tokens')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('token_id', '=', expired.tokenId)
      .execute();
    const late = await send<any>(stack.url, 'GET', path, { token: expired.token });
    expect([late.status, late.body.detail]).toEqual([401, 'the token has expired']);

    // An admin creates a user and a token through the API; the token works until it is revoked.
    const admin = ACTORS.admin;
    expect(
      (await stack.request('PUT', '/v1/users/staff-new', { actor: admin, body: { role: 'staff', name: 'New Staff' } }))
        .status,
    ).toBe(201);
    const issued = await stack.request('POST', '/v1/users/staff-new/tokens', {
      actor: admin,
      body: { label: 'laptop', days: 7 },
    });
    expect(issued.status).toBe(201);
    expect(issued.body.token).toMatch(/^hk_/);
    const stored = await stack.db
      .selectFrom('api_tokens')
      .select('token_hash')
      .where('token_id', '=', issued.body.tokenId)
      .executeTakeFirstOrThrow();
    expect(stored.token_hash).not.toContain(issued.body.token);
    expect((await send<any>(stack.url, 'GET', path, { token: issued.body.token })).status).toBe(200);
    expect(
      (await stack.request('POST', `/v1/tokens/${issued.body.tokenId}/revocation`, { actor: admin, body: {} })).status,
    ).toBe(200);
    const revoked = await send<any>(stack.url, 'GET', path, { token: issued.body.token });
    expect([revoked.status, revoked.body.detail]).toEqual([401, 'the token was revoked']);
  });

  test('when a token makes more requests a minute than allowed, then 429 with Retry-After', async () => {
    await withApp({ rateLimitPerMinute: 5 }, async (url) => {
      // A director of its own: the budget is counted in the database, across every app the token meets.
      const token = await tokenFor(stack.db, { id: `director-${randomUUID()}`, role: 'clinical_director' });
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await send(url, 'GET', `/v1/cases/${own.caseId}`, { token })).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      const limited = await send<any>(url, 'GET', `/v1/cases/${own.caseId}`, { token });
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    });
  });
});

describe('idempotency and strictness', () => {
  test('when fifty identical requests share an Idempotency-Key, then one case starts and all get its answer; another body is a 422', async () => {
    const { agencyId, clientId, record, start: body } = caseBody();
    await putClient(stack, agencyId, clientId, record);
    const key = randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        stack.request('POST', '/v1/cases', { body, headers: { 'idempotency-key': key } }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(202));
    const ids = new Set(answers.map((a) => a.body.caseId as string));
    expect(ids.size).toBe(1);
    const [caseId] = [...ids];
    await eventually(async () => (await stack.request('GET', `/v1/cases/${caseId}`)).body.status === 'open');
    const rows = await stack.db.selectFrom('cases').select('case_id').where('client_id', '=', clientId).execute();
    expect(rows).toHaveLength(1);
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true').length).toBe(49);
    const other = await stack.request('POST', '/v1/cases', {
      body: { ...body, reason: 'goals_met' },
      headers: { 'idempotency-key': key },
    });
    expect(other.status).toBe(422);
  });

  test('when a body is huge, a field unknown or a page too large, then a 4xx says so', async () => {
    const huge = await stack.request('POST', '/v1/cases', {
      body: { ...caseBody().start, clientId: 'x'.repeat(70_000) },
    });
    expect(huge.status).toBe(413);
    const nested = await stack.request('PUT', '/v1/clients/client-nested', {
      body: { ...caseBody().record, contact: { channels: [], noContactAtHome: false, admin: true } },
    });
    expect(nested.status).toBe(400);
    expect(nested.body.errors[0].field).toBe('body.contact.admin');
    const page = await stack.request('GET', '/v1/clients?limit=100000');
    expect(page.status).toBe(400);
    expect(page.body.errors[0].field).toBe('query.limit');
  });

  test('when /metrics is scraped with the metrics token, then request latency by route and workflow starts are there; without it, 401', async () => {
    expect((await send<string>(stack.url, 'GET', '/metrics')).status).toBe(401);
    expect((await send<string>(stack.url, 'GET', '/metrics', { token: 'not-the-metrics-token' })).status).toBe(401);
    // A user's API token is not the scraper's either.
    const userToken = await tokenFor(stack.db, ACTORS.admin);
    expect((await send<string>(stack.url, 'GET', '/metrics', { token: userToken })).status).toBe(401);
    const res = await send<string>(stack.url, 'GET', '/metrics', { token: METRICS_TOKEN });
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/handoff_http_request_duration_seconds_bucket\{[^}]*route="\/v1\/cases\/:caseId"/);
    expect(res.body).toMatch(/handoff_workflow_starts_total\{workflow="case"\} \d+/);
    // The audit trail's backlog, read from PostgreSQL at each scrape.
    expect(res.body).toMatch(/^handoff_audit_pending_events \d+$/m);
    expect(res.body).toMatch(/^handoff_audit_pending_oldest_seconds [\d.e+-]+$/m);
  });
});
