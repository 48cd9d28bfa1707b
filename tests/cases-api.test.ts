import { randomUUID } from 'node:crypto';
import { listCaseAuditEvents } from '../db/audit';
import { STAFF, caseBody, caseIdOf, putClient, today } from './support/cases';
import { type TestStack, eventually, send, startStack, tokenFor, withApp } from './support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

/** A client on record in agency-1, and the body that starts a case for it. */
async function newCase(overrides: Record<string, unknown> = {}) {
  const { agencyId, clientId, record, start } = caseBody({ lastDay: today(30), ...overrides });
  await putClient(stack, agencyId, clientId, record);
  return start as { clientId: string; kind: string; reason: string; lastDay?: string };
}

/** Starts a case and answers its id. */
async function started(body: object): Promise<string> {
  const res = await stack.request('POST', '/v1/cases', { body });
  expect(res.status).toBe(202);
  return caseIdOf(res);
}

async function openedCase(caseId: string) {
  return eventually(async () => {
    const res = await stack.request('GET', `/v1/cases/${caseId}`);
    return res.status === 200 && res.body.status === 'open' ? res.body : undefined;
  });
}

describe('health', () => {
  test('when both dependencies answer, then 200 ok for each', async () => {
    const res = await stack.request('GET', '/health', { actor: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', postgres: 'ok', temporal: 'ok', worker: 'ok' });
  });

  test('when no worker polls the task queue, then 503 names the worker: cases would stand still', async () => {
    await withApp({ workerTaskQueue: `nobody-polls-${randomUUID()}` }, async (url) => {
      const health = await send<any>(url, 'GET', '/health');
      expect(health.status).toBe(503);
      expect(health.body).toEqual({ status: 'unavailable', postgres: 'ok', temporal: 'ok', worker: 'unavailable' });
    });
  });

  test('when PostgreSQL is unreachable, then 503 names postgres and requests get a clear 503', async () => {
    const token = await tokenFor(stack.db, { id: 'staff-1', role: 'staff' });
    await withApp({ databaseUrl: 'postgres://postgres:postgres@127.0.0.1:1/none' }, async (url) => {
      const health = await send<any>(url, 'GET', '/health');
      expect(health.status).toBe(503);
      expect(health.body).toEqual({ status: 'unavailable', postgres: 'unavailable', temporal: 'ok' });
      const read = await send<any>(url, 'GET', `/v1/cases/${randomUUID()}`, { token });
      expect(read.status).toBe(503);
      expect(read.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(read.body.dependency).toBe('postgres');
    });
  });

  test('when Temporal is unreachable, then 503 names temporal and a new case is refused with 503', async () => {
    const token = await tokenFor(stack.db, { id: 'staff-1', role: 'staff' });
    await withApp({ temporalAddress: '127.0.0.1:1' }, async (url, db) => {
      const health = await send<any>(url, 'GET', '/health');
      expect(health.status).toBe(503);
      expect(health.body).toEqual({ status: 'unavailable', postgres: 'ok', temporal: 'unavailable' });
      const body = await newCase();
      const start = await send<any>(url, 'POST', '/v1/cases', { body, token });
      expect(start.status).toBe(503);
      expect(start.body.dependency).toBe('temporal');
      // The reservation went with the failed start: the client is not blocked by a case that never began.
      expect(
        await db.selectFrom('cases').select('case_id').where('client_id', '=', body.clientId).executeTakeFirst(),
      ).toBeUndefined();
    });
  });
});

describe('POST /v1/cases', () => {
  test('when a valid case is posted, then its workflow writes the case and its first audit event, and GET reads it back', async () => {
    const body = await newCase();
    const res = await stack.request('POST', '/v1/cases', { body });
    expect(res.status).toBe(202);
    const caseId = caseIdOf(res);
    expect(res.headers.get('location')).toBe(`/v1/cases/${caseId}`);
    expect(res.body).toMatchObject({ caseId, workflowId: `case-${caseId}`, status: 'opening' });

    const view = await openedCase(caseId);
    expect(view).toMatchObject({
      caseId,
      workflowId: `case-${caseId}`,
      clientId: body.clientId,
      counselorId: 'counselor-1',
      kind: 'transfer',
      reason: 'counselor_relocation',
      status: 'open',
      step: 'decision_review',
    });
    const events = await listCaseAuditEvents(stack.db, caseId);
    const opened = events.filter((e) => e.action === 'case.opened');
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({
      actor_id: 'staff-1',
      actor_role: 'staff',
      outcome: 'done',
      workflow_id: `case-${caseId}`,
    });
    expect(events.some((e) => e.action === 'case.viewed.details' && e.actor_id === 'staff-1')).toBe(true);
  });

  test('when a client already has an open case, then a second one is refused with 409', async () => {
    const body = await newCase();
    const caseId = await started(body);
    await openedCase(caseId);
    const second = await stack.request('POST', '/v1/cases', { body });
    expect(second.status).toBe(409);
    expect(second.body.rule).toBe('one_open_case');
    expect(second.body.detail).toContain(caseId);
  });

  test('when two starts for one client race, before any worker writes the case, then exactly one is accepted', async () => {
    const body = await newCase();
    const answers = await Promise.all(Array.from({ length: 8 }, () => stack.request('POST', '/v1/cases', { body })));
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409, 409, 409, 409, 409, 409, 409]);
    const rows = await stack.db.selectFrom('cases').select('case_id').where('client_id', '=', body.clientId).execute();
    expect(rows).toHaveLength(1);
  });

  test('when a case id is sent in the body, then 400: case ids are made by the service', async () => {
    const body = await newCase();
    const res = await stack.request('POST', '/v1/cases', { body: { ...body, caseId: randomUUID() } });
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toMatchObject({ field: 'body.caseId', message: 'unknown field' });
  });

  test('when the body is malformed, then 400 names each bad field and nothing is started or written', async () => {
    // An agency of its own: other test files write cases to the shared database meanwhile.
    const agencyId = `agency-${randomUUID().slice(0, 8)}`;
    const countCases = () =>
      stack.db
        .selectFrom('cases')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('agency_id', '=', agencyId)
        .executeTakeFirstOrThrow();
    const before = await countCases();
    const res = await stack.request('POST', '/v1/cases', {
      body: { agencyId: 7, kind: 'goodbye', reason: 'counselor_relocation', riskFlags: [], extra: true },
      actor: { ...STAFF, agencyId },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const fields = (res.body.errors as { field: string }[]).map((e) => e.field).sort();
    expect(fields).toEqual(['body.agencyId', 'body.clientId', 'body.extra', 'body.kind', 'body.riskFlags']);
    const after = await countCases();
    expect(after.n).toBe(before.n);
    const audited = await stack.db
      .selectFrom('audit_events')
      .select('action')
      .where('agency_id', '=', agencyId)
      .where('action', 'like', 'case.%')
      .execute();
    expect(audited).toEqual([]);
  });

  test('when the body is not JSON, then 400 says so', async () => {
    const res = await stack.request('POST', '/v1/cases', { body: '{"caseId": ' });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/not valid JSON/);
  });

  test('when no token is sent, then 401 and nothing is started', async () => {
    const res = await stack.request('POST', '/v1/cases', { body: await newCase(), actor: null });
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/Authorization: Bearer/);
  });
});

describe('GET /v1/cases/:caseId', () => {
  test('when the case does not exist, then 404', async () => {
    const res = await stack.request('GET', `/v1/cases/${randomUUID()}`);
    expect(res.status).toBe(404);
  });

  test('when the id is not a uuid, then 400 names the path parameter', async () => {
    const res = await stack.request('GET', '/v1/cases/not-a-uuid');
    expect(res.status).toBe(400);
    expect(res.body.errors[0].field).toBe('path.caseId');
  });
});

describe('POST /v1/cases/:caseId/cancel', () => {
  test('when an open case is cancelled with a reason, then it ends cancelled and the audit trail says who and why', async () => {
    const caseId = await started(await newCase());
    await openedCase(caseId);
    const director = { id: 'director-1', role: 'clinical_director' as const };
    const res = await stack.request('POST', `/v1/cases/${caseId}/cancel`, {
      body: { reason: 'the move fell through' },
      actor: director,
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'cancelled', step: 'done' });
    const result: unknown = await stack.client.workflow.getHandle(`case-${caseId}`).result();
    expect(result).toEqual({ caseId, status: 'cancelled' });
    const events = await listCaseAuditEvents(stack.db, caseId);
    expect(events.find((e) => e.action === 'case.cancelled')).toMatchObject({
      actor_id: 'director-1',
      actor_role: 'clinical_director',
      outcome_reason: 'the move fell through',
    });

    const again = await stack.request('POST', `/v1/cases/${caseId}/cancel`, { body: { reason: 'twice' } });
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/already cancelled/);
  });

  test('when the reason is blank, then 400 and the case stays open', async () => {
    const caseId = await started(await newCase());
    await openedCase(caseId);
    const res = await stack.request('POST', `/v1/cases/${caseId}/cancel`, { body: { reason: '  ' } });
    expect(res.status).toBe(400);
    expect((await stack.request('GET', `/v1/cases/${caseId}`)).body.status).toBe('open');
  });
});

describe('docs', () => {
  test('when /openapi.json is read, then it is OpenAPI 3.1 describing the case routes from the zod schemas', async () => {
    const res = await stack.request('GET', '/openapi.json', { actor: null });
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    const ref: string = res.body.paths['/v1/cases'].post.requestBody.content['application/json'].schema.$ref;
    const create = res.body.components.schemas[ref.replace('#/components/schemas/', '')];
    expect(create.required).toEqual(expect.arrayContaining(['clientId', 'kind', 'reason']));
    // The client's safety facts are not the request's to assert.
    expect(Object.keys(create.properties).filter((k) => ['riskFlags', 'contact', 'counselorId'].includes(k))).toEqual(
      [],
    );
    expect(create.additionalProperties).toBe(false);
    expect(Object.keys(res.body.paths)).toEqual(
      expect.arrayContaining([
        '/v1/transfers',
        '/v1/transfers/{transferId}',
        '/v1/clients',
        '/v1/users/{userId}/tokens',
        '/v1/audit',
        '/v1/audit/verify',
        '/v1/clients/{clientId}/disclosures',
        '/v1/cases/{caseId}/referrals/{referralId}/response',
      ]),
    );
    expect(res.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const docs = await stack.request('GET', '/docs', { actor: null });
    expect(docs.status).toBe(200);
    expect(docs.body).toContain('swagger-ui-bundle.js');
  });
});
