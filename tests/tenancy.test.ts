import { randomUUID } from 'node:crypto';
import { importCsv } from '../db/csv-import';
import { clinicianRow, upsertReference } from '../db/reference';
import { COUNSELOR, CaseDriver, STAFF, caseBody, caseIdOf, putClient, today } from './support/cases';
import { type TestStack, eventually, startStack } from './support/stack';

/** Each agency is its own world: the same id in two agencies names two records, and nothing crosses. */

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

function twoAgencies() {
  const tag = randomUUID().slice(0, 6);
  return { a: `agency-a-${tag}`, b: `agency-b-${tag}`, clientId: `client-${tag}` };
}

const staffOf = (agencyId: string) => ({ ...STAFF, agencyId });
const directorOf = (agencyId: string) => ({ id: 'director-1', role: 'clinical_director' as const, agencyId });

describe('the same id in two agencies', () => {
  test('when agency B writes and imports a client id that agency A uses, then B gets its own record and A’s is untouched', async () => {
    const { a, b, clientId } = twoAgencies();
    const aRecord = caseBody({ riskFlags: ['domestic_violence'] }).record;
    await putClient(stack, a, clientId, aRecord);
    const put = await stack.request('PUT', `/v1/clients/${clientId}`, {
      body: { ...aRecord, name: 'Someone Else', riskFlags: [] },
      actor: staffOf(b),
    });
    expect(put.status).toBe(201);
    const csv = [
      'client_id,agency_id,name,counselor_id,active,risk_flags,channels,no_contact_at_home,has_sud_records,needs',
      `${clientId},${b},Imported In B,counselor-1,yes,,portal:safe,no,no,`,
      `${clientId}-2,${a},Smuggled Into A,counselor-1,yes,,portal:safe,no,no,`,
    ].join('\n');
    const report = await importCsv(stack.db, 'clients', csv, STAFF, { agencyId: b });
    expect(report).toMatchObject({ updated: 1, inserted: 0 });
    expect(report.rejected).toEqual([{ line: 3, reason: `agency_id ${a} is not ${b}, the agency imported into` }]);

    const inA = await stack.request('GET', `/v1/clients/${clientId}`, { actor: staffOf(a) });
    expect(inA.body).toMatchObject({ agencyId: a, name: 'Sam Rivera', riskFlags: ['domestic_violence'] });
    const inB = await stack.request('GET', `/v1/clients/${clientId}`, { actor: staffOf(b) });
    expect(inB.body).toMatchObject({ agencyId: b, name: 'Imported In B', riskFlags: [] });
    const rows = await stack.db.selectFrom('clients').select('agency_id').where('client_id', '=', clientId).execute();
    expect(rows.map((r) => r.agency_id).sort()).toEqual([a, b].sort());
    const smuggled = await stack.request('GET', `/v1/clients/${clientId}-2`, { actor: staffOf(a) });
    expect(smuggled.status).toBe(404);
  });

  test('when agency B opens a case for the client id agency A uses, then A can still open its own, and A’s 409 shows only A’s case', async () => {
    const { a, b, clientId } = twoAgencies();
    const start = { clientId, kind: 'termination', reason: 'goals_met' };
    await putClient(stack, a, clientId, caseBody().record);
    await putClient(stack, b, clientId, caseBody().record);
    const inB = await stack.request('POST', '/v1/cases', { body: start, actor: staffOf(b) });
    expect(inB.status).toBe(202);
    const inA = await stack.request('POST', '/v1/cases', { body: start, actor: staffOf(a) });
    expect(inA.status).toBe(202);
    const again = await stack.request('POST', '/v1/cases', { body: start, actor: staffOf(a) });
    expect(again.status).toBe(409);
    expect(again.body.detail).toContain(caseIdOf(inA));
    expect(again.body.detail).not.toContain(caseIdOf(inB));
  });

  test('when agency B writes a client for a counselor id agency A uses, then A’s transfer of that counselor neither counts nor waits for it', async () => {
    const { a, b } = twoAgencies();
    const counselorId = 'counselor-moving';
    for (const agencyId of [a, b]) {
      await upsertReference(
        stack.db,
        'clinicians',
        clinicianRow(counselorId, {
          agencyId,
          name: 'Moving',
          capacity: 10,
          specialties: [],
          active: true,
          contact: 'x',
        }),
      );
      await upsertReference(
        stack.db,
        'clinicians',
        clinicianRow('receiver-1', {
          agencyId,
          name: 'Receiver',
          capacity: 10,
          specialties: [],
          active: true,
          contact: 'y',
        }),
      );
    }
    await putClient(stack, a, `${a}-c1`, { ...caseBody().record, counselorId });
    await putClient(stack, b, `${b}-c1`, { ...caseBody().record, counselorId });
    await putClient(stack, b, `${b}-c2`, { ...caseBody().record, counselorId });
    const transfer = await stack.request('POST', '/v1/transfers', {
      body: { counselorId, lastDay: today(40) },
      actor: staffOf(a),
    });
    expect(transfer.status).toBe(202);
    expect(transfer.body.expected).toBe(1);
    const done = await eventually(async () => {
      const t = await stack.request('GET', `/v1/transfers/${transfer.body.transferId}`, { actor: directorOf(a) });
      return t.body.status === 'open' ? t.body : undefined;
    }, 60_000);
    expect(done.expected).toBe(1);
    const cases = await stack.db
      .selectFrom('cases')
      .select(['agency_id', 'client_id'])
      .where('transfer_id', '=', transfer.body.transferId)
      .execute();
    expect(cases).toEqual([{ agency_id: a, client_id: `${a}-c1` }]);
    // B's own transfer of its counselor of the same id is not blocked by A's.
    const inB = await stack.request('POST', '/v1/transfers', {
      body: { counselorId, lastDay: today(40) },
      actor: staffOf(b),
    });
    expect([inB.status, inB.body.expected]).toEqual([202, 2]);
  });

  test('when two agencies have a user of the same id, then each token acts only in its own agency, and a look across is a recorded 404', async () => {
    const { a, b } = twoAgencies();
    const caseInA = await CaseDriver.open(stack, { agencyId: a });
    const readInA = await stack.request('GET', `/v1/cases/${caseInA.caseId}`, { actor: directorOf(a) });
    expect(readInA.status).toBe(200);
    const readFromB = await stack.request('GET', `/v1/cases/${caseInA.caseId}`, { actor: directorOf(b) });
    expect(readFromB.status).toBe(404);
    expect(readFromB.body.detail).toBe(`no case ${caseInA.caseId}`);
    const actFromB = await stack.request('POST', `/v1/cases/${caseInA.caseId}/cancel`, {
      body: { reason: 'not yours' },
      actor: directorOf(b),
    });
    expect(actFromB.status).toBe(404);
    expect((await caseInA.view()).status).toBe('open');
    const denied = await stack.db
      .selectFrom('audit_events')
      .select(['agency_id', 'action', 'outcome', 'actor_id'])
      .where('agency_id', '=', b)
      .where('action', '=', 'case.read_denied')
      .execute();
    expect(denied).toHaveLength(2);
    expect(denied[0]).toMatchObject({ outcome: 'refused', actor_id: 'director-1' });
    const users = await stack.db.selectFrom('users').select('agency_id').where('user_id', '=', 'director-1').execute();
    expect(users.map((u) => u.agency_id)).toEqual(expect.arrayContaining([a, b]));
  });

  test('when the same user id sends the same Idempotency-Key in two agencies, then two cases start, one in each', async () => {
    const { a, b, clientId } = twoAgencies();
    const key = randomUUID();
    const ids: string[] = [];
    for (const agencyId of [a, b]) {
      await putClient(stack, agencyId, clientId, caseBody().record);
      const res = await stack.request('POST', '/v1/cases', {
        body: { clientId, kind: 'termination', reason: 'goals_met' },
        actor: staffOf(agencyId),
        headers: { 'idempotency-key': key },
      });
      expect(res.status).toBe(202);
      ids.push(caseIdOf(res));
    }
    expect(new Set(ids).size).toBe(2);
    const keys = await stack.db
      .selectFrom('idempotency_keys')
      .select('agency_id')
      .where('idempotency_key', '=', key)
      .execute();
    expect(keys.map((k) => k.agency_id).sort()).toEqual([a, b].sort());
  });

  test('when a counselor reads another counselor’s case, then 404 and the refused read is in the audit trail', async () => {
    const others = await CaseDriver.open(stack, { counselorId: 'counselor-8' });
    const res = await stack.request('GET', `/v1/cases/${others.caseId}`, { actor: COUNSELOR });
    expect(res.status).toBe(404);
    const denied = await stack.db
      .selectFrom('audit_events')
      .select(['action', 'outcome', 'after'])
      .where('actor_id', '=', COUNSELOR.id)
      .where('action', '=', 'case.read_denied')
      .execute();
    expect(denied.some((d) => (d.after as { requestedCaseId?: string }).requestedCaseId === others.caseId)).toBe(true);
  });

  test('when agency B names agency A’s transfer, token, clinician or policy, then each answers as unknown and A’s is unchanged', async () => {
    const { a, b } = twoAgencies();
    await upsertReference(
      stack.db,
      'clinicians',
      clinicianRow('counselor-x', {
        agencyId: a,
        name: 'In A',
        capacity: 5,
        specialties: [],
        active: true,
        contact: 'a',
      }),
    );
    await putClient(stack, a, `${a}-c`, { ...caseBody().record, counselorId: 'counselor-x' });
    const transfer = await stack.request('POST', '/v1/transfers', {
      body: { counselorId: 'counselor-x', lastDay: today(40) },
      actor: staffOf(a),
    });
    expect(transfer.status).toBe(202);
    const transferId: string = transfer.body.transferId;
    expect((await stack.request('GET', `/v1/transfers/${transferId}`, { actor: directorOf(b) })).status).toBe(404);
    expect(
      (await stack.request('POST', `/v1/transfers/${transferId}/cancel`, { body: { reason: 'x' }, actor: staffOf(b) }))
        .status,
    ).toBe(404);
    // B cannot start a transfer for A's counselor: B has no such clinician.
    const foreign = await stack.request('POST', '/v1/transfers', {
      body: { counselorId: 'counselor-x', lastDay: today(40) },
      actor: staffOf(b),
    });
    expect([foreign.status, foreign.body.rule]).toEqual([422, 'unknown_counselor']);
    expect((await stack.request('GET', '/v1/clinicians/counselor-x', { actor: staffOf(b) })).status).toBe(404);

    const adminA = { id: 'admin-1', role: 'admin' as const, agencyId: a };
    const adminB = { id: 'admin-1', role: 'admin' as const, agencyId: b };
    await stack.request('PUT', '/v1/users/staff-9', { body: { role: 'staff', name: 'Nine' }, actor: adminA });
    const issued = await stack.request('POST', '/v1/users/staff-9/tokens', { body: {}, actor: adminA });
    expect(issued.status).toBe(201);
    const revoke = await stack.request('POST', `/v1/tokens/${issued.body.tokenId}/revocation`, {
      body: {},
      actor: adminB,
    });
    expect(revoke.status).toBe(404);
    const tokenB = await stack.request('POST', '/v1/users/staff-9/tokens', { body: {}, actor: adminB });
    expect(tokenB.status).toBe(404);
    const policyB = await stack.request('PUT', `/v1/agencies/${a}/policy`, {
      body: { agencyName: 'Taken', agencyPhone: '0', policy: {} },
      actor: adminB,
    });
    expect(policyB.status).toBe(404);
    const stillValid = await stack.db
      .selectFrom('api_tokens')
      .select('revoked_at')
      .where('token_id', '=', issued.body.tokenId)
      .executeTakeFirstOrThrow();
    expect(stillValid.revoked_at).toBeNull();
  });
});
