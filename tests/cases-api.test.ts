import { randomUUID } from 'node:crypto';
import { listCaseAuditEvents } from '../db/audit';
import { today } from './support/cases';
import { type TestStack, eventually, send, startStack, tokenFor, withApp } from './support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

function newCase(overrides: Record<string, unknown> = {}) {
  return {
    caseId: randomUUID(),
    agencyId: 'agency-1',
    clientId: `client-${randomUUID().slice(0, 8)}`,
    counselorId: 'counselor-1',
    clientName: 'Sam Rivera',
    kind: 'transfer',
    reason: 'counselor_relocation',
    lastDay: today(30),
    ...overrides,
  };
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
    expect(res.body).toEqual({ status: 'ok', postgres: 'ok', temporal: 'ok' });
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
      const body = newCase();
      const start = await send<any>(url, 'POST', '/v1/cases', { body, token });
      expect(start.status).toBe(503);
      expect(start.body.dependency).toBe('temporal');
      expect(
        await db.selectFrom('cases').select('case_id').where('case_id', '=', body.caseId).executeTakeFirst(),
      ).toBeUndefined();
    });
  });
});

describe('POST /v1/cases', () => {
  test('when a valid case is posted, then its workflow writes the case and its first audit event, and GET reads it back', async () => {
    const body = newCase();
    const res = await stack.request('POST', '/v1/cases', { body });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/v1/cases/${body.caseId}`);
    expect(res.body).toMatchObject({ caseId: body.caseId, workflowId: `case-${body.caseId}`, status: 'opening' });

    const view = await openedCase(body.caseId);
    expect(view).toMatchObject({
      caseId: body.caseId,
      workflowId: `case-${body.caseId}`,
      clientId: body.clientId,
      counselorId: 'counselor-1',
      kind: 'transfer',
      reason: 'counselor_relocation',
      status: 'open',
      step: 'decision_review',
    });
    const events = await listCaseAuditEvents(stack.db, body.caseId);
    const opened = events.filter((e) => e.action === 'case.opened');
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({
      actor_id: 'staff-1',
      actor_role: 'staff',
      outcome: 'done',
      workflow_id: `case-${body.caseId}`,
    });
    expect(events.some((e) => e.action === 'case.viewed.details' && e.actor_id === 'staff-1')).toBe(true);
  });

  test('when a client already has an open case, then a second one is refused with 409', async () => {
    const body = newCase();
    expect((await stack.request('POST', '/v1/cases', { body })).status).toBe(202);
    await openedCase(body.caseId);
    const second = await stack.request('POST', '/v1/cases', { body: { ...body, caseId: randomUUID() } });
    expect(second.status).toBe(409);
    expect(second.body.rule).toBe('one_open_case');
  });

  test('when no caseId is given, then one is generated', async () => {
    const { caseId, ...body } = newCase();
    const res = await stack.request('POST', '/v1/cases', { body });
    expect(res.status).toBe(202);
    expect(res.body.caseId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.caseId).not.toBe(caseId);
  });

  test('when the same caseId is posted twice, then the second is a 409 and one case exists', async () => {
    const body = newCase();
    expect((await stack.request('POST', '/v1/cases', { body })).status).toBe(202);
    const again = await stack.request('POST', '/v1/cases', { body });
    expect(again.status).toBe(409);
    await openedCase(body.caseId);
    const rows = await stack.db.selectFrom('cases').select('case_id').where('case_id', '=', body.caseId).execute();
    expect(rows).toHaveLength(1);
  });

  test('when the body is malformed, then 400 names each bad field and nothing is started or written', async () => {
    const caseId = randomUUID();
    const res = await stack.request('POST', '/v1/cases', {
      body: { caseId, agencyId: 7, kind: 'goodbye', reason: 'counselor_relocation', extra: true },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const fields = (res.body.errors as { field: string }[]).map((e) => e.field).sort();
    expect(fields).toEqual([
      'body.agencyId',
      'body.clientId',
      'body.clientName',
      'body.counselorId',
      'body.extra',
      'body.kind',
    ]);
    await expect(stack.client.workflow.getHandle(`case-${caseId}`).describe()).rejects.toThrow(/not found/i);
    expect(
      await stack.db.selectFrom('cases').select('case_id').where('case_id', '=', caseId).executeTakeFirst(),
    ).toBeUndefined();
  });

  test('when the body is not JSON, then 400 says so', async () => {
    const res = await stack.request('POST', '/v1/cases', { body: '{"caseId": ' });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/not valid JSON/);
  });

  test('when no token is sent, then 401 and nothing is started', async () => {
    const res = await stack.request('POST', '/v1/cases', { body: newCase(), actor: null });
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
    const body = newCase();
    await stack.request('POST', '/v1/cases', { body });
    await openedCase(body.caseId);
    const director = { id: 'director-1', role: 'clinical_director' as const };
    const res = await stack.request('POST', `/v1/cases/${body.caseId}/cancel`, {
      body: { reason: 'the move fell through' },
      actor: director,
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'cancelled', step: 'done' });
    const result: unknown = await stack.client.workflow.getHandle(`case-${body.caseId}`).result();
    expect(result).toEqual({ caseId: body.caseId, status: 'cancelled' });
    const events = await listCaseAuditEvents(stack.db, body.caseId);
    expect(events.find((e) => e.action === 'case.cancelled')).toMatchObject({
      actor_id: 'director-1',
      actor_role: 'clinical_director',
      outcome_reason: 'the move fell through',
    });

    const again = await stack.request('POST', `/v1/cases/${body.caseId}/cancel`, { body: { reason: 'twice' } });
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/already cancelled/);
  });

  test('when the reason is blank, then 400 and the case stays open', async () => {
    const body = newCase();
    await stack.request('POST', '/v1/cases', { body });
    await openedCase(body.caseId);
    const res = await stack.request('POST', `/v1/cases/${body.caseId}/cancel`, { body: { reason: '  ' } });
    expect(res.status).toBe(400);
    expect((await stack.request('GET', `/v1/cases/${body.caseId}`)).body.status).toBe('open');
  });
});

describe('docs', () => {
  test('when /openapi.json is read, then it is OpenAPI 3.1 describing the case routes from the zod schemas', async () => {
    const res = await stack.request('GET', '/openapi.json', { actor: null });
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    const ref: string = res.body.paths['/v1/cases'].post.requestBody.content['application/json'].schema.$ref;
    const create = res.body.components.schemas[ref.replace('#/components/schemas/', '')];
    expect(create.required).toEqual(expect.arrayContaining(['agencyId', 'clientId', 'counselorId', 'kind', 'reason']));
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
