import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { ScheduleHandle } from '@temporalio/client';
import { sql } from 'kysely';
import { reconcile } from '../activities/reconcile';
import { writeAnchor } from '../db/anchors';
import { hashEvent, integrateAuditChains } from '../db/audit';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { DRIFT_TASK_KIND } from '../db/tasks';
import type { DriftCheck, ReconcileSummary } from '../domain/reconcile';
import { ensureReconcileSchedule } from '../worker/main';
import { CaseDriver, DIRECTOR, STAFF, today } from './support/cases';
import { seedCaseload } from './support/caseload';
import { TEST_DIR, testContext } from './support/context';
import { type IsolatedServices, isolatedServices } from './support/isolated';
import { TEST_PAYLOAD_KEYS } from './support/payload-keys';
import { type TestStack, eventually, inAgency, startStack } from './support/stack';

const ROOT = resolve(__dirname, '..');
const anchorFile = join(TEST_DIR, `reconcile-anchors-${process.pid}.ndjson`);
let services: IsolatedServices;
let stack: TestStack;
/** The server's keys: drift is made the way only a superuser (or a bad restore) could make it. */
let superuser: DatabaseHandle;
let cases: CaseDriver[];
let transfer: { transferId: string; agencyId: string };

beforeAll(async () => {
  // A database and namespace of its own: the reconcile sees everything, and this file breaks things on purpose.
  services = await isolatedServices('reconcile');
  superuser = openDatabase(services.superuserUrl);
  stack = await startStack({
    databaseUrl: services.databaseUrl,
    namespace: services.namespace,
    auditAnchorFile: anchorFile,
  });
  cases = await Promise.all(Array.from({ length: 4 }, () => CaseDriver.open(stack)));
  const seed = await seedCaseload(stack.db, { clients: 3, receivers: [{ capacity: 5 }] });
  const start = await stack.request('POST', '/v1/transfers', {
    body: { counselorId: seed.counselorId, lastDay: today(30) },
    actor: inAgency(STAFF, seed),
  });
  expect(start.status).toBe(202);
  transfer = { transferId: start.body.transferId, agencyId: seed.agencyId };
  await eventually(async () => {
    const res = await stack.request('GET', `/v1/transfers/${transfer.transferId}`, { actor: inAgency(DIRECTOR, seed) });
    return res.body.status === 'open' && res.body.byStatus?.open === 3;
  }, 60_000);
  await integrateAuditChains(stack.db);
  await writeAnchor(stack.db, anchorFile);
}, 120_000);

afterAll(async () => {
  await stack?.client.schedule
    .getHandle(`reconcile-${stack.taskQueue}`)
    .delete()
    .catch(() => {});
  await stack?.close();
  await superuser?.close();
  await services?.drop();
});

/** Where an event sits in its agency's chain. */
async function positionOf(seq: string): Promise<string> {
  const entry = await stack.db
    .selectFrom('audit_chain')
    .select('position')
    .where('event_seq', '=', seq)
    .executeTakeFirstOrThrow();
  return entry.position;
}

/** The reconcile against this file's stack; nothing here is in flight long enough to need a settling time. */
function run() {
  return reconcile(
    { db: stack.db, temporal: stack.client, auditAnchorFile: anchorFile },
    { settleMs: 0, fullAuditVerify: true },
  );
}

/** `npm run reconcile` against this file's stack. */
function cli(...args: string[]) {
  const result = spawnSync(
    join(ROOT, 'node_modules', '.bin', 'tsx'),
    [join(ROOT, 'scripts', 'reconcile.ts'), ...args],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: services.databaseUrl,
        TEMPORAL_ADDRESS: testContext().temporalAddress,
        TEMPORAL_NAMESPACE: services.namespace,
        // The suite's key: the workflows' memos it lists are sealed with it.
        PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
        AUDIT_ANCHOR_FILE: anchorFile,
        LOG_LEVEL: 'silent',
      },
    },
  );
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Triggers the schedule now and answers what the run it started returned. */
async function triggerAndWait(schedule: ScheduleHandle): Promise<ReconcileSummary> {
  const before = (await schedule.describe()).info.numActionsTaken;
  await schedule.trigger();
  const action = await eventually(async () => {
    const { info } = await schedule.describe();
    return info.numActionsTaken > before ? info.recentActions.at(-1) : undefined;
  });
  const { workflowId, firstExecutionRunId } = action.action.workflow;
  return stack.client.workflow.getHandle(workflowId, firstExecutionRunId).result();
}

async function driftTasks() {
  return stack.db
    .selectFrom('tasks')
    .select(['task_key', 'agency_id', 'case_id', 'assignee_role', 'state', 'detail'])
    .where('kind', '=', DRIFT_TASK_KIND)
    .orderBy('task_key')
    .execute();
}

test('when nothing drifted, then the reconcile and `npm run reconcile` report clean', async () => {
  const report = await run();
  expect(report.drifts).toEqual([]);
  expect(report.ok).toBe(true);
  expect(report.checked).toMatchObject({ caseRows: 7, caseWorkflows: 7, transfers: 1 });
  expect(report.checked.auditEvents).toBeGreaterThan(7);

  const { code, stdout } = cli('--json', '--settle-minutes', '0');
  expect(code).toBe(0);
  expect(JSON.parse(stdout)).toMatchObject({ ok: true, drifts: [], checked: { caseRows: 7 } });
});

test('when each kind of drift is made on purpose, then each is reported by name, and the scheduled run raises one staff task for each, once', async () => {
  const [deleted, terminated, doubled] = cases as [CaseDriver, CaseDriver, CaseDriver, CaseDriver];
  // A case row deleted behind the service's back (foreign keys and triggers off, as a bad restore would).
  await superuser.db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    await trx.deleteFrom('cases').where('case_id', '=', deleted.caseId).execute();
  });
  // A workflow terminated from Temporal, which no activity records.
  await terminated.handle().terminate('reconcile test');
  // A second open case for a client, by SQL, past the index that normally refuses it.
  await sql`drop index cases_one_open_per_client`.execute(superuser.db);
  const second = randomUUID();
  const old = new Date(Date.now() - 3_600_000);
  const row = await stack.db
    .selectFrom('cases')
    .selectAll()
    .where('case_id', '=', doubled.caseId)
    .executeTakeFirstOrThrow();
  await stack.db
    .insertInto('cases')
    .values({
      ...row,
      case_id: second,
      workflow_id: `case-${second}`,
      risk_flags: JSON.stringify(row.risk_flags),
      contact: JSON.stringify(row.contact),
      state: JSON.stringify(row.state),
      created_at: old,
      updated_at: old,
    })
    .execute();
  // A reservation whose start never reached Temporal, an hour old.
  const stale = randomUUID();
  await stack.db
    .insertInto('cases')
    .values({
      ...row,
      case_id: stale,
      client_id: `client-stale-${stale.slice(0, 6)}`,
      workflow_id: `case-${stale}`,
      status: 'opening',
      step: 'opening',
      risk_flags: '[]',
      contact: JSON.stringify(row.contact),
      state: null,
      created_at: old,
      updated_at: old,
    })
    .execute();
  // A transfer's count altered.
  await sql`update transfers set opened = opened + 1 where transfer_id = ${transfer.transferId}`.execute(stack.db);
  // An audit event recorded twice under one key: the copy is chained properly, so only the duplicate shows.
  await sql`alter table audit_events drop constraint audit_events_event_key_key`.execute(superuser.db);
  const original = await stack.db
    .selectFrom('audit_events')
    .selectAll()
    .where('event_key', '=', `${doubled.caseId}:opened`)
    .executeTakeFirstOrThrow();
  const { seq: _seq, ...copy } = { ...original, prev_hash: null, occurred_at: new Date() };
  const inserted = await stack.db
    .insertInto('audit_events')
    .values({
      ...copy,
      before: original.before === null ? null : JSON.stringify(original.before),
      after: original.after === null ? null : JSON.stringify(original.after),
      hash: hashEvent(copy),
    })
    .returning('seq')
    .executeTakeFirstOrThrow();
  await stack.db.insertInto('audit_pending').values({ event_seq: inserted.seq, chain: 'agency-1' }).execute();
  // One event of the chain altered in place (the append-only trigger off, as a superuser could).
  const tampered = await stack.db
    .selectFrom('audit_events')
    .select(['seq', 'agency_id'])
    .where('action', '=', 'case.opened')
    .orderBy('seq')
    .limit(1)
    .executeTakeFirstOrThrow();
  await superuser.db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    await sql`update audit_events set outcome_reason = 'edited' where seq = ${tampered.seq}`.execute(trx);
  });
  // A message queued two days ago and never delivered.
  const messageKey = `reconcile-test:${randomUUID()}`;
  await stack.db
    .insertInto('outbox')
    .values({
      message_key: messageKey,
      agency_id: 'agency-1',
      case_id: null,
      kind: 'staff_email',
      channel: 'email',
      recipient: 'staff-1',
      payload: '{}',
      created_at: new Date(Date.now() - 2 * 86_400_000),
    })
    .execute();

  const report = await run();
  const expected: [DriftCheck, string | null, string, RegExp?][] = [
    ['case_workflow_without_row', 'agency-1', `case-${deleted.caseId}`, /running, no case row/],
    ['case_state_mismatch', 'agency-1', terminated.caseId, /row open, workflow TERMINATED/],
    ['client_open_cases', 'agency-1', doubled.clientId, /2 open cases/],
    ['case_row_without_workflow', 'agency-1', second],
    ['case_opening_stale', 'agency-1', stale],
    ['transfer_counts', transfer.agencyId, transfer.transferId, /opened 4 but 3 proposals/],
    ['audit_event_duplicated', 'agency-1', `${doubled.caseId}:opened`, /2 events/],
    ['audit_chain_broken', tampered.agency_id, `${tampered.agency_id}:${await positionOf(tampered.seq)}`, /altered/],
    ['outbox_undelivered', 'agency-1', messageKey, /staff_email pending/],
  ];
  for (const [check, agencyId, subject, detail] of expected) {
    const found = report.drifts.find((d) => d.check === check && d.subject === subject);
    expect({ check, found: found && { agencyId: found.agencyId } }).toEqual({ check, found: { agencyId } });
    if (detail) expect(found!.detail).toMatch(detail);
  }
  expect(report.drifts).toHaveLength(expected.length);
  expect(report.ok).toBe(false);
  // Ids and counts only: never a client's name or anything about their health.
  expect(JSON.stringify(report)).not.toMatch(/Sam Rivera|Client \d|suicid|domestic|relapse|sam\.rivera/i);

  const printed = cli('--settle-minutes', '0', '--full-audit');
  expect(printed.code).toBe(1);
  for (const [check, , subject] of expected) {
    expect(printed.stdout).toContain(`${check}: 1 `);
    expect(printed.stdout).toContain(subject);
  }
  expect(printed.stdout).not.toMatch(/Sam Rivera|Client \d/);

  // The schedule the worker creates at start, triggered rather than waited for.
  const schedule = await ensureReconcileSchedule(stack.client, {
    taskQueue: stack.taskQueue,
    everyMinutes: 60,
    args: { settleMs: 0, fullAuditVerify: true },
  });
  // Created twice (a second worker starting): still one schedule.
  await ensureReconcileSchedule(stack.client, {
    taskQueue: stack.taskQueue,
    everyMinutes: 60,
    args: { settleMs: 0, fullAuditVerify: true },
  });
  const first = await triggerAndWait(schedule);
  expect(first).toMatchObject({ ok: false, tasks: { opened: expected.length, closed: 0 } });
  expect(first.drift).toMatchObject(Object.fromEntries(expected.map(([check]) => [check, 1])));
  const tasks = await driftTasks();
  expect(tasks).toHaveLength(expected.length);
  for (const [check, agencyId, subject] of expected) {
    const task = tasks.find((t) => t.task_key.includes(`:${check}:`));
    expect(task).toMatchObject({
      agency_id: agencyId,
      case_id: null,
      state: 'open',
      assignee_role: agencyId ? 'staff' : 'admin',
    });
    expect(task!.detail).toContain(subject);
  }
  // The agency's staff see it in their queue, with no case to open.
  const queue = await stack.request('GET', `/v1/tasks?kind=${DRIFT_TASK_KIND}`, { actor: STAFF });
  expect(queue.status).toBe(200);
  expect(queue.body.items.length).toBeGreaterThanOrEqual(7);
  expect(queue.body.items[0]).toMatchObject({ kind: DRIFT_TASK_KIND, caseId: null, case: null });

  // The same drift found again raises nothing new.
  const again = await triggerAndWait(schedule);
  expect(again.tasks).toEqual({ opened: 0, closed: 0 });
  expect(await driftTasks()).toHaveLength(expected.length);

  // A drift repaired: its task closes by itself on the next run, the others stay open.
  await stack.db
    .updateTable('outbox')
    .set({ status: 'delivered', delivered_at: new Date() })
    .where('message_key', '=', messageKey)
    .execute();
  const repaired = await triggerAndWait(schedule);
  expect(repaired.tasks).toEqual({ opened: 0, closed: 1 });
  expect(repaired.drift.outbox_undelivered).toBe(0);
  const after = await driftTasks();
  expect(after.filter((t) => t.state === 'open')).toHaveLength(expected.length - 1);
  expect(after.find((t) => t.task_key.includes(':outbox_undelivered:'))!.state).toBe('done');
}, 120_000);
