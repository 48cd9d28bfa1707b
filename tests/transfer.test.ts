import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Kysely, PostgresDialect } from 'kysely';
import { Pool } from 'pg';
import { type OpenCaseFromRecordInput, createActivities } from '../activities';
import { transferWorkflowId } from '../api/transfers';
import { reserveCase } from '../db/cases';
import { importCsv } from '../db/csv-import';
import { clinicianRow, upsertReference } from '../db/reference';
import type { Database } from '../db/schema';
import { caseWorkflowId } from '../domain/case';
import { DIRECTOR, STAFF, saveHistory, today } from './support/cases';
import { type Caseload, seedCaseload } from './support/caseload';
import { testContext } from './support/context';
import { type TestStack, eventually, inAgency, startStack } from './support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

async function casesOf(transferId: string) {
  return stack.db
    .selectFrom('cases')
    .select(['case_id', 'client_id', 'status', 'risk_flags'])
    .where('transfer_id', '=', transferId)
    .execute();
}

/** A transfer recorded as the API records it, then its workflow started with the given page size. */
async function startTransfer(seed: Caseload, options: { expected: number; pageSize: number; clientIds?: string[] }) {
  const transferId = await recordTransfer(seed, options);
  const handle = await stack.client.workflow.start('caseloadTransferWorkflow', {
    workflowId: transferWorkflowId(transferId),
    taskQueue: stack.taskQueue,
    args: [{ transferId, lastDay: today(30), pageSize: options.pageSize }],
  });
  return { transferId, handle };
}

/** The activities a workflow's history scheduled, by name. */
async function scheduled(handle: WorkflowHandle, name: string) {
  const events = (await handle.fetchHistory()).events ?? [];
  return events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === name);
}

/** A transfer's record, as the API writes it before it starts the transfer's workflow. */
async function recordTransfer(seed: Caseload, options: { expected: number; clientIds?: string[] }): Promise<string> {
  const transferId = randomUUID();
  await stack.db
    .insertInto('transfers')
    .values({
      transfer_id: transferId,
      agency_id: seed.agencyId,
      counselor_id: seed.counselorId,
      last_day: today(30),
      reason: 'counselor_relocation',
      client_ids: options.clientIds ? JSON.stringify(options.clientIds) : null,
      status: 'opening',
      expected: options.expected,
      requested_by: STAFF.id,
      requested_by_role: STAFF.role,
    })
    .execute();
  return transferId;
}

describe('CSV import', () => {
  test('when a file has bad rows, then each is reported by line and reason, the good ones land, and a second import changes nothing', async () => {
    const tag = randomUUID().slice(0, 6);
    const csv = [
      'client_id,agency_id,name,counselor_id,active,risk_flags,channels,no_contact_at_home,has_sud_records,needs',
      `a-${tag},agency-1,Ann,couns-x,yes,,portal:safe,no,no,`,
      `b-${tag},agency-1,Ben,couns-x,yes,suicide_risk,phone:safe;mail,no,yes,grief`,
      `c-${tag},agency-1,,couns-x,yes,,,no,no,`,
      `d-${tag},agency-1,Dee,couns-x,maybe,werewolf,pigeon,no,no,`,
      `a-${tag},agency-1,Ann again,couns-x,yes,,,no,no,`,
      `e ${tag},agency-1,Eve,couns-x,yes,,,no,no,`,
    ].join('\n');
    const progress: number[] = [];
    const first = await importCsv(stack.db, 'clients', csv, STAFF, {
      agencyId: 'agency-1',
      onProgress: (done) => progress.push(done),
    });
    expect(first).toMatchObject({ rows: 6, inserted: 2, updated: 0, unchanged: 0 });
    expect(first.rejected.map((r) => r.line)).toEqual([4, 5, 6, 7]);
    expect(first.rejected[0]!.reason).toMatch(/^name:/);
    expect(first.rejected[1]!.reason).toMatch(/active/);
    expect(first.rejected[1]!.reason).toMatch(/riskFlags/);
    expect(first.rejected[1]!.reason).toMatch(/contact\.channels/);
    expect(first.rejected[2]!.reason).toMatch(/repeats line 2/);
    expect(first.rejected[3]!.reason).toMatch(/client_id/);
    expect(progress.at(-1)).toBe(6);
    const ben = await stack.request('GET', `/v1/clients/b-${tag}`);
    expect(ben.body).toMatchObject({
      riskFlags: ['suicide_risk'],
      hasSubstanceUseRecords: true,
      needs: ['grief'],
      contact: {
        channels: [
          { channel: 'phone', safe: true },
          { channel: 'mail', safe: false },
        ],
      },
    });

    const second = await importCsv(stack.db, 'clients', csv, STAFF, { agencyId: 'agency-1' });
    expect(second).toMatchObject({ inserted: 0, updated: 0, unchanged: 2 });
  });
});

describe('caseload transfer', () => {
  test('when a 40-client caseload is transferred, then every client gets one case with a fair proposal that respects capacity and needs', async () => {
    const seed = await seedCaseload(stack.db, {
      clients: 40,
      receivers: [{ capacity: 15, specialties: ['suicide_risk'] }, { capacity: 10 }, { capacity: 10 }],
      client: (i) => ({
        riskFlags: i % 10 === 0 ? ['suicide_risk'] : [],
        ...(i === 7
          ? {
              riskFlags: ['domestic_violence'],
              contact: { channels: [{ channel: 'mail', safe: false }], noContactAtHome: true },
            }
          : {}),
      }),
    });
    const start = await stack.request('POST', '/v1/transfers', {
      body: { counselorId: seed.counselorId, lastDay: today(30) },
      actor: inAgency(STAFF, seed),
    });
    expect(start.status).toBe(202);
    const transferId: string = start.body.transferId;
    expect(start.body.expected).toBe(40);

    const progress = await eventually(async () => {
      const res = await stack.request('GET', `/v1/transfers/${transferId}`, { actor: inAgency(DIRECTOR, seed) });
      return res.body.byStatus?.open === 40 && res.body.status === 'open' ? res.body : undefined;
    }, 60_000);
    expect(progress).toMatchObject({
      expected: 40,
      started: 40,
      byStatus: { open: 40 },
      openBySteps: { decision_review: 40 },
    });
    expect(progress.informed).toMatchObject({ inTime: 0, late: 0, notYet: 40, everyClientInTime: false });

    const proposals = await stack.db
      .selectFrom('proposals')
      .select(['client_id', 'clinician_id'])
      .where('transfer_id', '=', transferId)
      .execute();
    expect(proposals).toHaveLength(40);
    const load = new Map<string | null, number>();
    for (const p of proposals) load.set(p.clinician_id, (load.get(p.clinician_id) ?? 0) + 1);
    for (const r of seed.receivers) expect(load.get(r.id) ?? 0).toBeLessThanOrEqual(r.capacity);
    // 35 places for 40 clients: five wait for a receiver, and the progress report names them.
    expect(load.get(null)).toBe(5);
    expect(progress.withoutProposedReceiver).toHaveLength(5);
    // Clients at suicide risk go only to the clinician with that specialty (or wait).
    const suicideRisk = new Set(seed.clientIds.filter((_, i) => i % 10 === 0));
    for (const p of proposals.filter((x) => suicideRisk.has(x.client_id)))
      expect([seed.receivers[0]!.id, null]).toContain(p.clinician_id);
    // Fair spread: no receiver is more than one client fuller, relative to capacity, than the others would allow.
    const ratios = seed.receivers.map((r) => (load.get(r.id) ?? 0) / r.capacity);
    expect(Math.max(...ratios) - Math.min(...ratios)).toBeLessThanOrEqual(0.2);

    const cases = await casesOf(transferId);
    expect(new Set(cases.map((c) => c.client_id)).size).toBe(40);
    const dv = cases.find((c) => c.client_id === seed.clientIds[7])!;
    expect(dv.risk_flags).toEqual(['domestic_violence']);

    // A case with a proposed receiver opens in one activity: its row, its opening and its proposal in one
    // transaction; then it waits at the decision review with nothing more to do.
    const proposed = cases.find((c) => proposals.find((p) => p.client_id === c.client_id)?.clinician_id)!;
    const history = await stack.client.workflow.getHandle(`case-${proposed.case_id}`).fetchHistory();
    const activities = (history.events ?? []).flatMap(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
    );
    expect(activities).toEqual(['openCaseFromRecord']);
    const opening = await stack.db
      .selectFrom('audit_events')
      .select(['action', 'activity_id'])
      .where('case_id', '=', proposed.case_id)
      .where('action', 'in', ['case.opened', 'referral.candidates_proposed'])
      .execute();
    expect(opening.map((e) => e.action).sort()).toEqual(['case.opened', 'referral.candidates_proposed']);
    expect(new Set(opening.map((e) => e.activity_id)).size).toBe(1);

    // A director overrides one proposal: not to a receiver already full, but to one with room.
    const target = cases.find((c) => c.client_id === seed.clientIds[3])!;
    const current = proposals.find((p) => p.client_id === seed.clientIds[3])!.clinician_id;
    const full = seed.receivers.find((r) => r.id !== current && (load.get(r.id) ?? 0) >= r.capacity)!;
    const refused = await stack.request('POST', `/v1/transfers/${transferId}/cases/${target.case_id}/proposal`, {
      body: { clinicianId: full.id },
      actor: inAgency(DIRECTOR, seed),
    });
    expect([refused.status, refused.body.rule]).toEqual([422, 'receiver_full']);
    await upsertReference(
      stack.db,
      'clinicians',
      clinicianRow(`spare-${seed.agencyId}`, {
        agencyId: seed.agencyId,
        name: 'Spare',
        capacity: 3,
        specialties: [],
        active: true,
        contact: 'ext 9',
      }),
    );
    const override = await stack.request('POST', `/v1/transfers/${transferId}/cases/${target.case_id}/proposal`, {
      body: { clinicianId: `spare-${seed.agencyId}` },
      actor: inAgency(DIRECTOR, seed),
    });
    expect(override.status).toBe(200);
    const overridden = await stack.db
      .selectFrom('proposals')
      .select(['clinician_id', 'overridden_by'])
      .where('case_id', '=', target.case_id)
      .executeTakeFirstOrThrow();
    expect(overridden.clinician_id).toBe(`spare-${seed.agencyId}`);
    const byStaff = await stack.request('POST', `/v1/transfers/${transferId}/cases/${target.case_id}/proposal`, {
      body: { clinicianId: seed.receivers[1]!.id },
      actor: inAgency(STAFF, seed),
    });
    expect(byStaff.status).toBe(403);

    // The move falls through: every open case is cancelled, saying why.
    const cancel = await stack.request('POST', `/v1/transfers/${transferId}/cancel`, {
      body: { reason: 'the relocation fell through' },
      actor: inAgency(DIRECTOR, seed),
    });
    expect(cancel.status).toBe(202);
    await eventually(async () => (await casesOf(transferId)).every((c) => c.status === 'cancelled'), 60_000);
    const transfer = await eventually(async () => {
      const row = await stack.db
        .selectFrom('transfers')
        .select(['status', 'cancel_reason'])
        .where('transfer_id', '=', transferId)
        .executeTakeFirstOrThrow();
      return row.status === 'cancelled' ? row : undefined;
    });
    expect(transfer).toEqual({ status: 'cancelled', cancel_reason: 'the relocation fell through' });
    await saveHistory(stack.client.workflow.getHandle(`transfer-${transferId}`), 'caseload-transfer-cancelled');
    const reasons = await stack.db
      .selectFrom('audit_events')
      .select('outcome_reason')
      .where('action', '=', 'case.cancelled')
      .where(
        'case_id',
        'in',
        cases.map((c) => c.case_id),
      )
      .execute();
    expect(reasons).toHaveLength(40);
    expect(new Set(reasons.map((r) => r.outcome_reason))).toEqual(
      new Set(['transfer cancelled: the relocation fell through']),
    );
  });

  test('when a transfer opens 30 pages, then it does so in one run of its workflow with no empty page after the last, so its progress never waits behind its cases in the task queue', async () => {
    // A page of one client: 30 pages, past the 25 a run held before, and a caseload that ends on a full page.
    const seed = await seedCaseload(stack.db, { clients: 30, receivers: [{ capacity: 30 }] });
    const { transferId, handle } = await startTransfer(seed, { expected: 30, pageSize: 1 });

    await eventually(async () => {
      const row = await stack.db
        .selectFrom('transfers')
        .select('status')
        .where('transfer_id', '=', transferId)
        .executeTakeFirstOrThrow();
      return row.status === 'open' ? true : undefined;
    }, 120_000);
    expect(await casesOf(transferId)).toHaveLength(30);

    // The run that set the transfer open is the first: it did not continue as new.
    const events = (await handle.fetchHistory()).events ?? [];
    const started = events[0]?.workflowExecutionStartedEventAttributes;
    expect(started?.continuedExecutionRunId ?? '').toBe('');
    expect(await scheduled(handle, 'openTransferPage')).toHaveLength(30);
  }, 180_000);

  test('when a transfer whose caseload ends on a full page is cancelled, then it cancels page by page with no empty page after the last', async () => {
    const seed = await seedCaseload(stack.db, { clients: 3, receivers: [{ capacity: 3 }] });
    const { transferId, handle } = await startTransfer(seed, { expected: 3, pageSize: 1 });
    await eventually(async () => {
      const cases = await casesOf(transferId);
      return cases.length === 3 && cases.every((c) => c.status === 'open') ? true : undefined;
    }, 60_000);
    const cancel = await stack.request('POST', `/v1/transfers/${transferId}/cancel`, {
      body: { reason: 'the relocation fell through' },
      actor: inAgency(DIRECTOR, seed),
    });
    expect(cancel.status).toBe(202);
    expect(await handle.result()).toMatchObject({ phase: 'cancelled' });
    expect((await casesOf(transferId)).map((c) => c.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(await scheduled(handle, 'cancelTransferPage')).toHaveLength(3);
  }, 120_000);

  test('when a transfer’s case opens, then it is one transaction of four statements (record and policy, row, task, both audit events), and a retry of it writes nothing more', async () => {
    const seed = await seedCaseload(stack.db, { clients: 2, receivers: [{ capacity: 2 }] });
    const [first, second] = seed.clientIds as [string, string];
    // One case opened by a transfer, as every case opens: its state is the shape the next opening starts from.
    const { transferId } = await startTransfer(seed, { expected: 1, pageSize: 10, clientIds: [first] });
    const opened = await eventually(
      () =>
        stack.db
          .selectFrom('cases')
          .select(['state'])
          .where('transfer_id', '=', transferId)
          .where('status', '=', 'open')
          .executeTakeFirst(),
      60_000,
    );

    // The second client's case, reserved as a transfer page reserves it, then opened with statements counted.
    const caseId = randomUUID();
    const reservation = await reserveCase(stack.db, {
      case_id: caseId,
      agency_id: seed.agencyId,
      client_id: second,
      counselor_id: seed.counselorId,
      kind: 'transfer',
      reason: 'counselor_relocation',
      status: 'opening',
      step: 'opening',
      workflow_id: caseWorkflowId(caseId),
      opened_by: STAFF.id,
      transfer_id: transferId,
      last_day: today(30),
    });
    expect(reservation.outcome).toBe('reserved');
    const statements: string[] = [];
    const pool = new Pool({ connectionString: testContext().databaseUrl, max: 1 });
    const counted = new Kysely<Database>({
      dialect: new PostgresDialect({ pool }),
      log: (event) => {
        if (event.level === 'query') statements.push(event.query.sql.trim().split(/\s+/)[0]!.toLowerCase());
      },
    });
    try {
      const activities = createActivities({ db: counted });
      const openCaseFromRecord = (i: OpenCaseFromRecordInput) => activities.openCaseFromRecord(i);
      const template = opened.state!;
      const input: OpenCaseFromRecordInput = {
        caseId,
        agencyId: seed.agencyId,
        clientId: second,
        kind: 'transfer',
        reason: 'counselor_relocation',
        lastDay: today(30),
        transferId,
        openedBy: STAFF,
        requestId: null,
        state: {
          ...template,
          facts: { ...template.facts, caseId, clientId: second },
          status: 'opening',
          step: 'opening',
        },
        proposal: { eventKey: `${caseId}:1:referral.candidates_proposed`, seq: 1, providers: [seed.receivers[0]!.id] },
      };
      const env = new MockActivityEnvironment({
        activityId: '1',
        workflowExecution: { workflowId: caseWorkflowId(caseId), runId: randomUUID() },
      });
      const answer = await env.run(openCaseFromRecord, input);
      expect(statements).toEqual(['begin', 'select', 'insert', 'insert', 'with', 'commit']);

      const row = await stack.db
        .selectFrom('cases')
        .select(['status', 'step', 'client_name'])
        .where('case_id', '=', caseId)
        .executeTakeFirstOrThrow();
      expect(row).toMatchObject({ status: 'open', step: 'decision_review', client_name: 'Client 1' });
      const tasksOf = () =>
        stack.db.selectFrom('tasks').select(['kind', 'state']).where('case_id', '=', caseId).execute();
      const tasks = await tasksOf();
      expect(tasks).toEqual([{ kind: 'review_decision', state: 'open' }]);
      const eventsOf = () =>
        stack.db
          .selectFrom('audit_events as e')
          .leftJoin('audit_pending as p', 'p.event_seq', 'e.seq')
          .leftJoin('audit_chain as c', 'c.event_seq', 'e.seq')
          .select(['e.action', 'e.seq', 'e.activity_id', (eb) => eb.fn.coalesce('p.chain', 'c.chain').as('chain')])
          .where('e.case_id', '=', caseId)
          .orderBy('e.seq')
          .execute();
      const events = await eventsOf();
      // In the order given, both in the agency's chain (queued, or chained by now), from the one activity.
      expect(events.map((e) => [e.action, e.chain, e.activity_id])).toEqual([
        ['case.opened', seed.agencyId, '1'],
        ['referral.candidates_proposed', seed.agencyId, '1'],
      ]);

      // A retry (the worker died before Temporal heard back): the same answer, nothing written twice.
      statements.length = 0;
      expect(await env.run(openCaseFromRecord, input)).toEqual(answer);
      expect(statements).toEqual(['begin', 'select', 'insert', 'select', 'commit']);
      expect(await tasksOf()).toEqual(tasks);
      expect((await eventsOf()).map((e) => e.seq)).toEqual(events.map((e) => e.seq));
    } finally {
      await counted.destroy();
    }
  }, 120_000);

  test('when a transfer names an unknown counselor, a past last day, a stranger client or a counselor already moving, then a clear 4xx and nothing starts', async () => {
    const seed = await seedCaseload(stack.db, { clients: 3, receivers: [{ capacity: 5 }] });
    const before = await stack.db
      .selectFrom('transfers')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      // This agency's only: other test files start transfers in the shared database meanwhile.
      .where('agency_id', '=', seed.agencyId)
      .executeTakeFirstOrThrow();

    const unknown = await stack.request('POST', '/v1/transfers', {
      body: { counselorId: 'nobody-here', lastDay: today(30) },
      actor: inAgency(STAFF, seed),
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.detail).toMatch(/no counselor nobody-here/);
    const past = await stack.request('POST', '/v1/transfers', {
      body: { counselorId: seed.counselorId, lastDay: today(-2) },
      actor: inAgency(STAFF, seed),
    });
    expect(past.status).toBe(400);
    expect(past.body.detail).toMatch(/in the past/);
    const stranger = await stack.request('POST', '/v1/transfers', {
      body: { counselorId: seed.counselorId, lastDay: today(30), clientIds: [seed.clientIds[0], 'someone-else'] },
      actor: inAgency(STAFF, seed),
    });
    expect(stranger.status).toBe(422);
    expect(stranger.body.detail).toMatch(/someone-else/);
    const strict = await stack.request('POST', '/v1/transfers', {
      body: { counselorId: seed.counselorId, lastDay: today(30), extra: 1 },
      actor: inAgency(STAFF, seed),
    });
    expect(strict.status).toBe(400);
    const after = await stack.db
      .selectFrom('transfers')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      // This agency's only: other test files start transfers in the shared database meanwhile.
      .where('agency_id', '=', seed.agencyId)
      .executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);

    const first = await stack.request('POST', '/v1/transfers', {
      body: { counselorId: seed.counselorId, lastDay: today(30), clientIds: seed.clientIds.slice(0, 2) },
      actor: inAgency(STAFF, seed),
    });
    expect(first.status).toBe(202);
    const second = await stack.request('POST', '/v1/transfers', {
      body: { counselorId: seed.counselorId, lastDay: today(30) },
      actor: inAgency(STAFF, seed),
    });
    expect(second.status).toBe(409);
    expect(second.body.detail).toMatch(/already has an open transfer/);
    await eventually(async () => (await casesOf(first.body.transferId)).length === 2);
  });
});
