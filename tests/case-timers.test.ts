import { randomUUID } from 'node:crypto';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { clientRow, upsertReference } from '../db/reference';
import { upsertUser } from '../db/users';
import type { RiskFlag } from '../domain/process';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import {
  type CaseInput,
  REVIEW_ESCALATIONS_MAX,
  approveSafetyPlanUpdate,
  caseSnapshotQuery,
  caseWorkflow,
  proposeReferralUpdate,
  recordConversationUpdate,
  recordReferralResponseUpdate,
  recordSafetyPlanUpdate,
  reviewDecisionUpdate,
  scheduleFirstAppointmentUpdate,
} from '../workflows';
import { COUNSELOR, DIRECTOR, STAFF, saveHistory, today } from './support/cases';
import { testContext } from './support/context';
import { testDataConverter } from './support/payload-keys';
import { eventually, quietRuntime } from './support/stack';

/** Timer paths on the time-skipping server: SLAs, expiries, deadlines and follow-ups that take days. */

let env: TestWorkflowEnvironment;
let database: DatabaseHandle;
let worker: Worker;
let running: Promise<void>;
const taskQueue = `timers-${randomUUID()}`;

beforeAll(async () => {
  quietRuntime();
  const context = testContext();
  database = openDatabase(context.databaseUrl);
  const dataConverter = testDataConverter();
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: context.testServerPath } },
    client: { dataConverter },
  });
  await env.connection.operatorService
    .addSearchAttributes({
      namespace: 'default',
      searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTES.map((k) => [k.name, k.type === 'DATETIME' ? 5 : 2])),
    })
    .catch(() => undefined);
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    dataConverter,
    workflowBundle: { codePath: context.workflowBundlePath },
    activities: createActivities({ db: database.db }),
  });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
  await database?.close();
});

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function start(
  overrides: Partial<CaseInput> = {},
  riskFlags: RiskFlag[] = [],
): Promise<{ handle: WorkflowHandleWithFirstExecutionRunId<typeof caseWorkflow>; caseId: string; agencyId: string }> {
  const caseId = randomUUID();
  const input: CaseInput = {
    caseId,
    agencyId: `agency-${randomUUID().slice(0, 6)}`,
    clientId: `client-${caseId.slice(0, 8)}`,
    kind: 'transfer',
    reason: 'counselor_relocation',
    lastDay: today(60),
    openedBy: STAFF,
    requestId: null,
    ...overrides,
  };
  // The case reads the client's facts from the agency's record.
  await upsertReference(
    database.db,
    'clients',
    clientRow(input.clientId, {
      agencyId: input.agencyId,
      name: 'Sam Rivera',
      counselorId: COUNSELOR.id,
      active: true,
      riskFlags,
      contact: { channels: [{ channel: 'email', safe: true }], noContactAtHome: false, email: 'sam@client.example' },
      hasSubstanceUseRecords: false,
      needs: [],
    }),
  );
  const handle = await env.client.workflow.start(caseWorkflow, {
    workflowId: `case-${caseId}`,
    taskQueue,
    args: [input],
  });
  await eventually(async () => (await handle.query(caseSnapshotQuery)).status === 'open');
  return { handle, caseId, agencyId: input.agencyId };
}

/**
 * The case as its read model holds it. Across a continue-as-new the tests read this rather than query the workflow:
 * the time-skipping server can leave a query to a run that just continued unanswered.
 */
async function caseRow(caseId: string) {
  return database.db
    .selectFrom('cases')
    .select(['status', 'step', 'state'])
    .where('case_id', '=', caseId)
    .executeTakeFirst();
}

async function tasks(caseId: string) {
  return database.db
    .selectFrom('tasks')
    .select(['task_key', 'kind', 'state', 'assignee_id'])
    .where('case_id', '=', caseId)
    .orderBy('created_at')
    .execute();
}

/** The case's escalation and outreach tasks (its waits on people are tasks too, tested in tests/work-queue). */
async function raised(caseId: string) {
  return (await tasks(caseId)).filter((t) => !t.task_key.includes(':wait:'));
}

const approve = { actor: DIRECTOR, requestId: null, decision: 'approve' as const, rationale: 'approved' };
const converse = (clientChoice: 'accept_proposed' | 'decline_services', heldOn = today()) => ({
  actor: COUNSELOR,
  requestId: null,
  heldOn,
  clientChoice,
  lastSessionDate: heldOn,
});

test('when a review passes its SLA, then it escalates to the covering directors by name, one level each, until done', async () => {
  const { handle, caseId, agencyId } = await start();
  await database.db
    .insertInto('agency_policies')
    .values({
      agency_id: agencyId,
      agency_name: 'Timers',
      agency_phone: '555',
      policy: JSON.stringify({ coveringDirectors: ['director-7', 'director-8'] }),
      updated_by: 'test',
    })
    .execute();
  for (const id of ['director-7', 'director-8'])
    await upsertUser(database.db, { id, role: 'clinical_director', agencyId, name: id, email: `${id}@agency.example` });
  await env.sleep(72 * HOUR + 60_000);
  await eventually(async () => (await raised(caseId)).length === 1);
  await env.sleep(72 * HOUR);
  await eventually(async () => (await raised(caseId)).length === 2);
  expect((await raised(caseId)).map((t) => [t.kind, t.assignee_id])).toEqual([
    ['escalation.review_overdue', 'director-7'],
    ['escalation.review_overdue', 'director-8'],
  ]);
  const snapshot = await handle.executeUpdate(reviewDecisionUpdate, { args: [approve] });
  expect(snapshot.step).toBe('client_conversation');
  expect(snapshot.state.escalations.map((e) => e.level)).toEqual([1, 2]);
  // Each covering director is emailed once, with a link and nothing about the client.
  const emails = await database.db
    .selectFrom('outbox')
    .select(['recipient', 'payload'])
    .where('case_id', '=', caseId)
    .where('kind', '=', 'staff_email')
    .orderBy('created_at')
    .execute();
  expect(emails.map((e) => e.recipient)).toEqual(['director-7', 'director-8']);
  expect(emails[0]!.payload).toMatchObject({
    subject: 'handoff: a case was escalated to you',
    caseLink: `/v1/cases/${caseId}`,
  });
  expect(JSON.stringify(emails)).not.toMatch(/Sam Rivera|portal|review/i);
  // Both escalations close by themselves once the review is done.
  await eventually(async () => (await raised(caseId)).every((t) => t.state === 'done'));
  await saveHistory(handle, 'review-escalation');
});

test('when a receiver does not answer within the referral SLA, then the referral expires and re-routes to the next candidate', async () => {
  const { handle } = await start();
  await handle.executeUpdate(reviewDecisionUpdate, { args: [approve] });
  await handle.executeUpdate(recordConversationUpdate, { args: [converse('accept_proposed')] });
  await handle.executeUpdate(proposeReferralUpdate, {
    args: [
      {
        actor: STAFF,
        requestId: null,
        candidates: [
          { providerId: 'clin-a', name: 'Dr. A', external: false, contact: 'ext 101' },
          { providerId: 'clin-b', name: 'Dr. B', external: false, contact: 'ext 102' },
        ],
      },
    ],
  });
  await eventually(async () => (await handle.query(caseSnapshotQuery)).state.referrals[0]?.state === 'sent');
  await env.sleep(7 * DAY + 60_000);
  const snapshot = await eventually(async () => {
    const s = await handle.query(caseSnapshotQuery);
    return s.state.referrals[1]?.state === 'sent' ? s : undefined;
  });
  expect(snapshot.state.referrals[0]!.history.map((h) => h.state)).toEqual([
    'proposed',
    'sent',
    'expired',
    're_routed',
  ]);
  expect(snapshot.state.referrals[1]!.candidate.providerId).toBe('clin-b');
  expect(snapshot.state.reroutes).toBe(1);
  await saveHistory(handle, 'referral-expiry');
});

test('when a client declines further services, then follow-up outreach comes at 7 and 30 days, and the case closes', async () => {
  const { handle, caseId } = await start({ kind: 'termination', reason: 'goals_met', lastDay: null });
  await handle.executeUpdate(reviewDecisionUpdate, { args: [approve] });
  await handle.executeUpdate(recordConversationUpdate, { args: [converse('decline_services')] });
  await eventually(async () => (await caseRow(caseId))?.step === 'follow_up');
  const result = await handle.result();
  expect(result).toEqual({ caseId, status: 'closed' });
  expect((await raised(caseId)).map((t) => [t.task_key, t.state])).toEqual([
    [`${caseId}:follow_up:7`, 'open'],
    [`${caseId}:follow_up:30`, 'open'],
  ]);
  // Every wait of the case closed with it; the outreach it asks for stays until someone makes it.
  expect((await tasks(caseId)).filter((t) => t.task_key.includes(':wait:') && t.state === 'open')).toEqual([]);
  const letter = await database.db
    .selectFrom('letters')
    .select(['delivery', 'channel'])
    .where('case_id', '=', caseId)
    .executeTakeFirstOrThrow();
  expect(letter).toEqual({ delivery: 'queued', channel: 'email' });
  await saveHistory(handle, 'termination-follow-up');
});

test('when a relocating counselor’s client is not told in time, then the case escalates before and at the notice deadline', async () => {
  // Last day in 20 days, 14 days' notice: due in 6 days, warning 3 days before.
  const { handle, caseId } = await start({ lastDay: today(20) });
  await handle.executeUpdate(reviewDecisionUpdate, { args: [approve] });
  await env.sleep(4 * DAY);
  await eventually(async () => (await tasks(caseId)).some((t) => t.kind === 'escalation.notice_at_risk'));
  await env.sleep(4 * DAY);
  await eventually(async () => (await tasks(caseId)).some((t) => t.kind === 'escalation.notice_missed'));
  // Eight days have passed on the workflow's clock.
  const snapshot = await handle.executeUpdate(recordConversationUpdate, {
    args: [converse('accept_proposed', today(8))],
  });
  expect(snapshot.state.conversation.informedInTime).toBe(false);
  await saveHistory(handle, 'notice-deadline');
});

/** How many events the run of a workflow (the newest, unless given) holds. */
async function historyLength(workflowId: string, runId?: string): Promise<number> {
  const history = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
  return history.events?.length ?? 0;
}

test('when a review is left for months, then it escalates three times and the escalations stand; the history stays small', async () => {
  const { handle, caseId } = await start({ lastDay: null, kind: 'termination', reason: 'goals_met' });
  // 72-hour SLA: three months would have been thirty reminders, each a task for a director.
  await env.sleep(90 * DAY);
  await eventually(async () => (await raised(caseId)).length === REVIEW_ESCALATIONS_MAX);
  await env.sleep(30 * DAY);
  const escalations = await raised(caseId);
  expect(escalations.map((t) => [t.kind, t.state])).toEqual(
    Array.from({ length: REVIEW_ESCALATIONS_MAX }, () => ['escalation.review_overdue', 'open']),
  );
  expect(await historyLength(handle.workflowId)).toBeLessThan(100);
  // The review still closes them all, four months on.
  const snapshot = await handle.executeUpdate(reviewDecisionUpdate, { args: [approve] });
  expect(snapshot.step).toBe('client_conversation');
  await eventually(async () => (await raised(caseId)).every((t) => t.state === 'done'));
  await saveHistory(handle, 'review-escalation-capped');
});

test('when a client who carried a suicide-risk flag is handed off, then a year of caring contacts runs in a fresh history and each one still comes', async () => {
  const { handle, caseId } = await start({ lastDay: null, kind: 'referral', reason: 'outside_scope' }, [
    'suicide_risk',
  ]);
  await handle.executeUpdate(recordSafetyPlanUpdate, {
    args: [{ actor: COUNSELOR, requestId: null, documentRef: 'ehr://plan/1' }],
  });
  await handle.executeUpdate(approveSafetyPlanUpdate, { args: [{ actor: DIRECTOR, requestId: null }] });
  await handle.executeUpdate(reviewDecisionUpdate, { args: [approve] });
  await handle.executeUpdate(recordConversationUpdate, { args: [converse('accept_proposed')] });
  await handle.executeUpdate(proposeReferralUpdate, {
    args: [
      {
        actor: STAFF,
        requestId: null,
        candidates: [{ providerId: 'clin-a', name: 'Dr. A', external: false, contact: 'ext 101' }],
      },
    ],
  });
  const sent = await eventually(async () => {
    const s = await handle.query(caseSnapshotQuery);
    return s.state.referrals[0]?.state === 'sent' ? s.state.referrals[0] : undefined;
  });
  await handle.executeUpdate(recordReferralResponseUpdate, {
    args: [{ actor: STAFF, requestId: null, referralId: sent.referralId, response: 'accepted' }],
  });
  await handle.executeUpdate(scheduleFirstAppointmentUpdate, {
    args: [{ actor: STAFF, requestId: null, referralId: sent.referralId, scheduledFor: `${today(5)}T15:00:00Z` }],
  });
  // The letter goes out and the follow-up begins in a new run of the same workflow, carrying the case.
  const continued = await eventually(async () => {
    const described = await env.client.workflow.getHandle(handle.workflowId).describe();
    return described.runId !== handle.firstExecutionRunId ? described : undefined;
  });
  expect(continued.status.name).toBe('RUNNING');
  const first = await env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).describe();
  expect(first.status.name).toBe('CONTINUED_AS_NEW');
  const view = await eventually(async () => {
    const row = await caseRow(caseId);
    return row?.step === 'follow_up' && row.state ? { ...row, state: row.state } : undefined;
  });
  expect(view.state.referrals[0]!.state).toBe('first_appointment_scheduled');
  expect(view.state.followUp.schedule!.map((p) => p.offsetDays)).toEqual([7, 14, 30, 45, 90, 180, 365]);

  const result = await handle.result();
  expect(result).toEqual({ caseId, status: 'closed' });
  expect((await raised(caseId)).map((t) => t.task_key)).toEqual([
    `${caseId}:follow_up:7`,
    `${caseId}:caring_contact:14`,
    `${caseId}:follow_up:30`,
    `${caseId}:caring_contact:45`,
    `${caseId}:caring_contact:90`,
    `${caseId}:caring_contact:180`,
    `${caseId}:caring_contact:365`,
  ]);
  // The case's own events number on from one run to the next, with no gap and none twice.
  const events = await database.db
    .selectFrom('audit_events')
    .select(['event_key', 'action'])
    .where('event_key', 'like', `${caseId}:%`)
    .orderBy('seq')
    .execute();
  // (Two records made in the same moment may commit in either order.)
  const numbers = events
    .flatMap((e) => /^[^:]+:(\d+):/.exec(e.event_key)?.[1] ?? [])
    .map(Number)
    .sort((a, b) => a - b);
  expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => i + 1));
  expect(events.map((e) => e.action)).toContain('follow_up.caring_contact_due');
  expect(events.at(-1)!.action).toBe('case.step.done');
  expect(await historyLength(handle.workflowId)).toBeLessThan(150);
  await saveHistory(handle, 'follow-up-continued');
});
