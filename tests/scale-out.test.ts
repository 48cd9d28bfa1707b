import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { lastAnchor } from '../db/anchors';
import { integrateAuditChains, verifyChain } from '../db/audit';
import { today } from './support/cases';
import { openedCases, seedCaseload } from './support/caseload';
import { testDataConverter } from './support/payload-keys';
import { eventually } from './support/stack';
import { type FaultStack, startFaultStack } from './faults/harness';
import { transferInvariants } from './faults/invariants';

/**
 * A deployment scaled out: two worker processes on one task queue and two API processes, against one PostgreSQL
 * and one Temporal. A transfer started through one API, read through the other and acted on through both keeps
 * the invariants one of each keeps, and both workers and both APIs do part of the work.
 */

const CLIENTS = Number(process.env.SCALE_CLIENTS ?? 300);
/** Cases a director approves, half through each API, each approval sent through both at once under one key. */
const REVIEWED = 20;
const timeout = 600_000;

let stack: FaultStack;
beforeAll(async () => {
  // Anchors every 5 s, so the two workers write the chains' heads to the one file while the test runs.
  stack = await startFaultStack('scale-out', { workers: 2, apis: 2, env: { AUDIT_ANCHOR_INTERVAL_SECONDS: '5' } });
}, 240_000);
afterAll(async () => {
  await stack?.close();
});

/** The workers' identities on a case's workflow and activity tasks. */
async function taskIdentities(client: Client, caseId: string): Promise<string[]> {
  const history = await client.workflow.getHandle(`case-${caseId}`).fetchHistory();
  return (history.events ?? []).flatMap(
    (e) =>
      [e.workflowTaskCompletedEventAttributes?.identity, e.activityTaskStartedEventAttributes?.identity].filter(
        Boolean,
      ) as string[],
  );
}

test(
  'when two workers and two APIs share one PostgreSQL and one Temporal, then a transfer driven through both opens every case once, the chain holds, and each process did part of the work',
  async () => {
    const answered = [0, 0];
    let stillInProgress = 0;
    let slowestApproval = 0;
    const via = async (
      api: number,
      method: string,
      path: string,
      body: unknown,
      token: string,
      headers?: Record<string, string>,
    ) => {
      const res = await stack.apis[api]!.request(method, path, body, token, headers);
      if (res.status >= 200 && res.status < 300) answered[api]!++;
      return res;
    };
    const seed = await seedCaseload(stack.db, {
      clients: CLIENTS,
      receivers: [{ capacity: CLIENTS }, { capacity: CLIENTS }],
    });
    const staff = await stack.token('staff', seed.agencyId);
    const director = await stack.token('clinical_director', seed.agencyId);

    const start = await via(0, 'POST', '/v1/transfers', { counselorId: seed.counselorId, lastDay: today(60) }, staff);
    expect(start.status).toBe(202);
    const transferId: string = start.body.transferId;
    const progress = (api: number) => via(api, 'GET', `/v1/transfers/${transferId}`, undefined, director);
    const started = await eventually(async () => {
      const res = await progress(1);
      return res.status === 200 && res.body.started > 0 ? res.body : undefined;
    }, timeout);
    expect(started.expected).toBe(CLIENTS);

    // The first cases to reach their review are approved while the transfer still opens the rest.
    const reviewed = await eventually(async () => {
      const rows = await stack.db
        .selectFrom('cases')
        .select('case_id')
        .where('transfer_id', '=', transferId)
        .where('status', '!=', 'opening')
        .orderBy('case_id')
        .limit(REVIEWED)
        .execute();
      return rows.length === REVIEWED ? rows.map((r) => r.case_id) : undefined;
    }, timeout);
    for (const [i, caseId] of reviewed.entries()) {
      await eventually(async () => {
        const view = await via(i % 2, 'GET', `/v1/cases/${caseId}`, undefined, director);
        return view.body.step === 'decision_review';
      }, timeout);
      // The same approval through both replicas at once, as a client's retry can land: one applies it, the other
      // waits for its answer (the keys live in PostgreSQL), and one still waiting after 15 s is told so and retries.
      const key = `scale-out:${randomUUID()}`;
      const approve = async (api: number) => {
        for (;;) {
          const res = await via(
            api,
            'POST',
            `/v1/cases/${caseId}/review`,
            { decision: 'approve', rationale: 'relocation; continuity planned' },
            director,
            { 'idempotency-key': key },
          );
          if (res.status !== 409 || !String(res.body.detail).includes('still in progress')) return res;
          stillInProgress++;
        }
      };
      const sent = Date.now();
      const answers = await Promise.all([approve(i % 2), approve((i + 1) % 2)]);
      slowestApproval = Math.max(slowestApproval, (Date.now() - sent) / 1000);
      expect(answers.map((a) => [a.status, a.body])).toEqual([
        [200, answers[0].body],
        [200, answers[0].body],
      ]);
    }

    await eventually(async () => (await openedCases(stack.db, transferId)) === CLIENTS, timeout);
    const done = await eventually(async () => {
      const res = await progress(1);
      return res.body.status === 'open' && res.body.byStatus?.open === CLIENTS ? res.body : undefined;
    }, timeout);
    expect(done).toMatchObject({ expected: CLIENTS, started: CLIENTS, cases: CLIENTS });
    await eventually(async () => {
      const res = await progress(0);
      return res.body.openBySteps?.decision_review === CLIENTS - REVIEWED;
    }, timeout);

    const report = await transferInvariants(stack, transferId, CLIENTS);
    expect(report).toMatchObject({
      caseRows: CLIENTS,
      workflows: CLIENTS,
      opened: CLIENTS,
      lost: 0,
      duplicated: 0,
      duplicateEvents: 0,
      chainVerified: true,
      drift: [],
    });
    const approvals = await stack.db
      .selectFrom('audit_events')
      .select('case_id')
      .where('case_id', 'in', reviewed)
      .where('action', '=', 'decision.approved')
      .execute();
    expect(approvals.map((a) => a.case_id).sort()).toEqual([...reviewed].sort());

    // The two workers integrated the chains side by side, and anchored them to one file: all of it verifies.
    await integrateAuditChains(stack.db);
    const chain = await verifyChain(stack.db, lastAnchor(join(stack.dir, 'audit-anchors.ndjson')), { full: true });
    expect(chain).toMatchObject({ ok: true, full: true, firstBroken: null, unchained: 0, anchor: { matches: true } });
    expect(chain.chains.find((c) => c.chain === seed.agencyId)?.checked).toBeGreaterThan(CLIENTS);

    const connection = await Connection.connect({ address: stack.temporalAddress });
    const tasks = new Map<string, number>();
    try {
      const client = new Client({ connection, dataConverter: testDataConverter() });
      const caseIds = (
        await stack.db.selectFrom('cases').select('case_id').where('transfer_id', '=', transferId).execute()
      ).map((r) => r.case_id);
      for (let i = 0; i < caseIds.length; i += 20) {
        const batch = await Promise.all(caseIds.slice(i, i + 20).map((id) => taskIdentities(client, id)));
        for (const identity of batch.flat()) tasks.set(identity, (tasks.get(identity) ?? 0) + 1);
      }
    } finally {
      await connection.close();
    }
    // Every task of every case was done by one of the two workers (Temporal's identity: `<pid>@<host>`), each some.
    const identities = stack.workers.map((w) => `${w.pid()}@${hostname()}`);
    const perWorker = identities.map((id) => tasks.get(id) ?? 0);
    const figures = { clients: CLIENTS, perWorker, answered, stillInProgress, slowestApproval };
    process.stdout.write(`scale-out: ${JSON.stringify(figures)}\n`);
    expect([...tasks.keys()].sort()).toEqual([...identities].sort());
    expect(perWorker.every((n) => n > 0)).toBe(true);
    expect(answered.every((n) => n > 0)).toBe(true);
    expect(stack.crashes).toEqual([]);
  },
  timeout,
);
