import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { enqueueStaffEmail } from '../db/outbox';
import { clientRow, upsertReference } from '../db/reference';
import { upsertUser } from '../db/users';
import { today } from './support/cases';
import { openedCases, seedCaseload } from './support/caseload';
import { TEST_DIR } from './support/context';
import { eventually } from './support/stack';
import { type FaultStack, startFaultStack } from './faults/harness';
import { type ScenarioReport, transferInvariants } from './faults/invariants';

/**
 * Breaks things on purpose, on a deployment of its own (worker and API as processes), and proves every case stays on
 * track: nothing lost, nothing done twice, the chain whole, no process crashed. `npm test` runs it small
 * (FAULT_CLIENTS=40); `npm run test:faults` at full size (500-client transfers). Each scenario's figures go to
 * .data/test/faults/report.ndjson and the console.
 */

const CLIENTS = Number(process.env.FAULT_CLIENTS ?? 40);
/** The transfer the load scenario reads against, and how many requests its 50 users send. */
const LOAD_CLIENTS = Number(process.env.LOAD_CLIENTS ?? 100);
const LOAD_REQUESTS = Number(process.env.LOAD_REQUESTS ?? LOAD_CLIENTS * 10);
const REPORT = join(TEST_DIR, 'faults', 'report.ndjson');

let stack: FaultStack;
beforeAll(async () => {
  stack = await startFaultStack('suite');
}, 240_000);
afterAll(async () => {
  await stack?.close();
});

/** Seconds from `since` until more of the transfer's cases are opened than `from`: how long progress stood still. */
async function resumed(
  opened: () => Promise<number>,
  from: number,
  since: number,
  total = CLIENTS,
): Promise<number | null> {
  // Already all opened when the fault came: nothing stood still.
  if (from >= total) return null;
  await eventually(async () => (await opened()) > from, timeout);
  return (Date.now() - since) / 1000;
}

/** Starts a transfer of a fresh caseload of `CLIENTS` clients; answers its id and how to count its opened cases. */
async function startTransfer(clients = CLIENTS) {
  const seed = await seedCaseload(stack.db, {
    clients,
    receivers: [{ capacity: clients }, { capacity: clients }],
  });
  const token = await stack.token('staff', seed.agencyId);
  const res = await stack.request(
    'POST',
    '/v1/transfers',
    { counselorId: seed.counselorId, lastDay: today(60) },
    token,
  );
  expect(res.status).toBe(202);
  const transferId: string = res.body.transferId;
  const opened = () => openedCases(stack.db, transferId);
  return { seed, token, transferId, opened };
}

async function finish(
  scenario: string,
  transferId: string,
  faults: number,
  recoverSeconds: number | null,
  crashesBefore: number,
  clients = CLIENTS,
): Promise<ScenarioReport> {
  const report: ScenarioReport = {
    scenario,
    ...(await transferInvariants(stack, transferId, clients)),
    crashes: stack.crashes.length - crashesBefore,
    faults,
    recoverSeconds,
  };
  appendFileSync(REPORT, `${JSON.stringify({ clients, ...report })}\n`);
  process.stdout.write(`fault scenario: ${JSON.stringify(report)}\n`);
  expect(stack.crashes.slice(crashesBefore)).toEqual([]);
  expect(report).toMatchObject({
    caseRows: clients,
    workflows: clients,
    opened: clients,
    lost: 0,
    duplicated: 0,
    duplicateEvents: 0,
    chainVerified: true,
    drift: [],
  });
  return report;
}

const timeout = Math.max(300_000, CLIENTS * 2_000);

test(
  'when the worker is killed (SIGKILL) with activities in flight, then a new worker finishes the transfer: nothing lost, nothing twice',
  async () => {
    const crashes = stack.crashes.length;
    const t = await startTransfer();
    await eventually(async () => (await t.opened()) >= Math.min(5, CLIENTS / 4), timeout);
    await stack.worker.kill('SIGKILL');
    const killedAt = Date.now();
    const atKill = await t.opened();
    await stack.worker.start();
    const recover = await resumed(t.opened, atKill, killedAt);
    await eventually(async () => (await t.opened()) === CLIENTS, timeout);
    await finish('worker SIGKILL', t.transferId, 1, recover, crashes);
  },
  timeout,
);

test(
  'when the Temporal server is stopped (SIGTERM) and killed (SIGKILL), then the API answers 503 at once while it is down and everything recovers by itself',
  async () => {
    const crashes = stack.crashes.length;
    const t = await startTransfer();
    await eventually(async () => (await t.opened()) >= Math.min(5, CLIENTS / 4), timeout);
    let recover = 0;
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      await stack.temporal.kill(signal);
      // A request that needs Temporal is told so within 5 s; health names it.
      const clientId = `c-${randomUUID().slice(0, 8)}`;
      await upsertReference(
        stack.db,
        'clients',
        clientRow(clientId, {
          agencyId: t.seed.agencyId,
          name: 'Client',
          // Another counselor's client: the running transfer must not take it up.
          counselorId: t.seed.receivers[0]!.id,
          active: true,
          riskFlags: [],
          contact: { channels: [{ channel: 'portal', safe: true }], noContactAtHome: false },
          hasSubstanceUseRecords: false,
          needs: [],
        }),
      );
      const began = Date.now();
      const start = await stack.request(
        'POST',
        '/v1/cases',
        { clientId, kind: 'termination', reason: 'goals_met' },
        t.token,
      );
      expect(start.status).toBe(503);
      expect(Date.now() - began).toBeLessThan(5_000);
      // Nothing half-made: the reservation is given back, so the client can be started once Temporal is back.
      expect(await stack.db.selectFrom('cases').select('case_id').where('client_id', '=', clientId).execute()).toEqual(
        [],
      );
      const health = await stack.request('GET', '/health');
      expect(health.status).toBe(503);
      expect(health.body.temporal).toBe('unavailable');
      await sleep(3_000);
      await stack.temporal.start();
      const restarted = Date.now();
      // Neither the API nor the worker is restarted: both find the server again.
      await eventually(async () => (await stack.request('GET', '/health')).status === 200, 120_000);
      recover = Math.max(recover, (Date.now() - restarted) / 1000);
    }
    await eventually(async () => (await t.opened()) === CLIENTS, timeout);
    await finish('temporal SIGTERM + SIGKILL', t.transferId, 2, recover, crashes);
  },
  timeout,
);

test(
  'when PostgreSQL connections are killed again and again, and PostgreSQL is stopped for 15 s, then activities retry, nothing crashes, no case is half-written',
  async () => {
    const crashes = stack.crashes.length;
    const t = await startTransfer();
    await eventually(async () => (await t.opened()) >= Math.min(5, CLIENTS / 4), timeout);
    let killed = 0;
    for (let i = 0; i < 10; i++) {
      killed += await stack.postgres.terminateConnections().catch(() => 0);
      await sleep(300);
    }
    await stack.postgres.stop();
    const health = await stack.request('GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body.postgres).toBe('unavailable');
    await sleep(15_000);
    await stack.postgres.start();
    const restarted = Date.now();
    await eventually(async () => (await stack.request('GET', '/health')).status === 200, 120_000);
    const recover = (Date.now() - restarted) / 1000;
    await eventually(async () => (await t.opened()) === CLIENTS, timeout);
    // No half-written case: every opened row has its opening event, no reservation is left behind.
    const opening = await stack.db
      .selectFrom('cases')
      .select('case_id')
      .where('transfer_id', '=', t.transferId)
      .where('status', '=', 'opening')
      .execute();
    expect(opening).toEqual([]);
    expect(killed).toBeGreaterThan(0);
    await finish('postgres connections killed + stopped 15 s', t.transferId, 11, recover, crashes);
  },
  timeout,
);

test(
  'when the outbox sender is killed mid-batch, then every message is delivered, and a repeat carries the same Message-ID',
  async () => {
    const crashes = stack.crashes.length;
    const agencyId = `agency-${randomUUID().slice(0, 8)}`;
    await upsertUser(stack.db, {
      id: 'director-1',
      role: 'clinical_director',
      agencyId,
      name: 'D',
      email: 'd@a.example',
    });
    const count = Math.min(300, Math.max(60, CLIENTS * 3));
    const keys = Array.from({ length: count }, () => `faults:${randomUUID()}`);
    await stack.db.transaction().execute(async (trx) => {
      for (const key of keys) {
        await enqueueStaffEmail(trx, {
          messageKey: key,
          agencyId,
          caseId: null,
          toUserId: 'director-1',
          subject: 'handoff: a test message',
          text: 'a message to count',
          caseLink: null,
        });
      }
    });
    const sentCount = async () =>
      Number(
        (
          await stack.db
            .selectFrom('outbox')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('message_key', 'in', keys)
            .where('status', '=', 'delivered')
            .executeTakeFirstOrThrow()
        ).n,
      );
    await eventually(async () => (await sentCount()) >= 1, 60_000);
    await stack.worker.kill('SIGKILL');
    const killedAt = Date.now();
    const sentAtKill = await sentCount();
    await stack.worker.start();
    await eventually(async () => (await sentCount()) === count, timeout);
    const allDelivered = (Date.now() - killedAt) / 1000;
    const rows = await stack.db
      .selectFrom('outbox')
      .select(['message_key', 'attempts'])
      .where('message_key', 'in', keys)
      .execute();
    expect(rows).toHaveLength(count);
    const repeats = [...stack.mail.values()].filter((n) => n > 1).length;
    const report = {
      scenario: 'outbox sender SIGKILL mid-batch',
      messages: count,
      sentAtKill,
      deliveredIds: stack.mail.size,
      repeats,
      crashes: stack.crashes.length - crashes,
      secondsFromKillToAllDelivered: allDelivered,
    };
    appendFileSync(REPORT, `${JSON.stringify(report)}\n`);
    process.stdout.write(`fault scenario: ${JSON.stringify(report)}\n`);
    // Every message reached the peer under its own Message-ID. Only a message the killed sender had handed to SMTP
    // but not yet marked sent can go twice, under the same Message-ID (receivers drop the repeat): at most one.
    expect(stack.mail.size).toBeGreaterThanOrEqual(count);
    expect(repeats).toBeLessThanOrEqual(1);
    expect(stack.crashes.slice(crashes)).toEqual([]);
  },
  timeout,
);

test(
  'when the worker and the API get SIGTERM mid-transfer, then they stop cleanly, and once started again nothing is lost',
  async () => {
    const crashes = stack.crashes.length;
    const t = await startTransfer();
    await eventually(async () => (await t.opened()) >= Math.min(5, CLIENTS / 4), timeout);
    await Promise.all([stack.worker.kill('SIGTERM'), stack.api.kill('SIGTERM')]);
    const stoppedAt = Date.now();
    const atStop = await t.opened();
    await stack.worker.start();
    await stack.api.start();
    const recover = await resumed(t.opened, atStop, stoppedAt);
    await eventually(async () => (await t.opened()) === CLIENTS, timeout);
    await finish('worker + api SIGTERM', t.transferId, 2, recover, crashes);
  },
  timeout,
);

test(
  'when 50 users read cases and queues during a transfer whose worker is killed, then every request is answered',
  async () => {
    const crashes = stack.crashes.length;
    const t = await startTransfer(LOAD_CLIENTS);
    const director = await stack.token('clinical_director', t.seed.agencyId);
    await eventually(async () => (await t.opened()) >= 1, timeout);
    const load = autocannon({
      url: stack.apiUrl,
      connections: 50,
      amount: LOAD_REQUESTS,
      timeout: 30,
      headers: { authorization: `Bearer ${director}` },
      requests: [
        { method: 'GET', path: `/v1/cases?transferId=${t.transferId}&limit=50` },
        { method: 'GET', path: '/v1/tasks?view=agency&limit=50' },
        { method: 'GET', path: `/v1/transfers/${t.transferId}` },
      ],
    });
    // The worker dies while the users read; what they read comes from PostgreSQL, so nobody is turned away.
    await sleep(1_000);
    await stack.worker.kill('SIGKILL');
    const killedAt = Date.now();
    const atKill = await t.opened();
    // Measured while the users still read: from the kill to the first case opened after it.
    const recovering = stack.worker.start().then(() => resumed(t.opened, atKill, killedAt, LOAD_CLIENTS));
    recovering.catch(() => undefined); // awaited below, once the load is done
    const result = await load;
    const recover = await recovering;
    await eventually(async () => (await t.opened()) === LOAD_CLIENTS, timeout);
    const summary = {
      scenario: 'load while faulted',
      users: 50,
      requests: result.requests.total,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      p99Ms: result.latency.p99,
    };
    appendFileSync(REPORT, `${JSON.stringify(summary)}\n`);
    process.stdout.write(`fault scenario: ${JSON.stringify(summary)}\n`);
    expect(result.requests.total).toBeGreaterThanOrEqual(LOAD_REQUESTS);
    expect({ non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts }).toEqual({
      non2xx: 0,
      errors: 0,
      timeouts: 0,
    });
    await finish('load while faulted', t.transferId, 1, recover, crashes, LOAD_CLIENTS);
  },
  timeout,
);
