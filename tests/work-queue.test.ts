import { randomUUID } from 'node:crypto';
import { upsertUser } from '../db/users';
import { followUpPlan, DEFAULT_POLICY } from '../domain/process';
import { COUNSELOR, CaseDriver, DIRECTOR, STAFF, release, today } from './support/cases';
import { type TestActor, type TestStack, eventually, startStack } from './support/stack';

/** Every wait on a person is a task in that person's (or role's) queue, and leaves it when done. */

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

async function queue(actor: TestActor, query = '') {
  const res = await stack.request('GET', `/v1/tasks${query}`, { actor });
  expect(res.status).toBe(200);
  return res.body.items as { taskId: string; caseId: string; kind: string; assignee: any; dueAt: string | null }[];
}

async function kindsFor(actor: TestActor, caseId: string) {
  return (await queue(actor, `?caseId=${caseId}`)).map((t) => t.kind).sort();
}

test('when a case is driven from start to follow-up, then every wait is in the right queue and leaves it when done', async () => {
  const c = await CaseDriver.open(stack, { kind: 'referral', reason: 'outside_scope', lastDay: undefined });
  expect(await kindsFor(DIRECTOR, c.caseId)).toEqual(['review_decision']);
  expect(await kindsFor(COUNSELOR, c.caseId)).toEqual([]);
  const [review] = await queue(DIRECTOR, `?caseId=${c.caseId}`);
  expect(review!.assignee).toEqual({ role: 'clinical_director', userId: null });
  expect(review!.dueAt).not.toBeNull();

  await c.approve();
  await eventually(async () => (await kindsFor(COUNSELOR, c.caseId)).join() === 'hold_conversation');
  expect(await kindsFor(DIRECTOR, c.caseId)).toEqual([]);
  await c.converse();
  await eventually(async () => (await kindsFor(STAFF, c.caseId)).join() === 'propose_receiver');
  expect(await kindsFor(COUNSELOR, c.caseId)).toEqual([]);

  await c.act(
    'referrals',
    { candidates: [{ providerId: 'harbor', name: 'Harbor Counseling', external: true, contact: '555-0101' }] },
    STAFF,
  );
  await eventually(async () => (await kindsFor(STAFF, c.caseId)).join() === 'record_release');
  await c.act('consents', release('harbor'), STAFF);
  await eventually(async () => (await kindsFor(STAFF, c.caseId)).join() === 'referral_answer');
  const view = await c.view();
  const referralId: string = view.process.referrals[0].referralId;
  await c.act(`referrals/${referralId}/response`, { response: 'accepted' }, STAFF);
  await eventually(async () => (await kindsFor(STAFF, c.caseId)).join() === 'schedule_first_appointment');
  await c.act(`referrals/${referralId}/appointment`, { scheduledFor: `${today(5)}T15:00:00Z` }, STAFF);
  await eventually(async () => (await kindsFor(STAFF, c.caseId)).join() === 'record_first_appointment');
  await c.act(`referrals/${referralId}/appointment-outcome`, { outcome: 'kept' }, COUNSELOR);
  // The kept appointment means the client engaged: the case closes rather than waiting for a follow-up (the
  // step can show `follow_up` for a moment before it does).
  const after = await c.until(
    (v) =>
      v.status === 'closed' ||
      (v.step === 'follow_up' && v.waitingFor.some((w: string) => /follow-up on \d{4}-/.test(w))),
  );
  await eventually(async () => (await kindsFor(STAFF, c.caseId)).length === 0);
  for (const actor of [STAFF, COUNSELOR, DIRECTOR]) expect(await kindsFor(actor, c.caseId)).toEqual([]);
  expect(after.status === 'closed' || after.waitingFor.some((w: string) => /follow-up on \d{4}-/.test(w))).toBe(true);

  const done = await stack.request('GET', `/v1/tasks?view=agency&state=done&caseId=${c.caseId}`, { actor: DIRECTOR });
  expect(done.body.items.map((t: { kind: string }) => t.kind).sort()).toEqual(
    [
      'hold_conversation',
      'propose_receiver',
      'record_first_appointment',
      'record_release',
      'referral_answer',
      'review_decision',
      'schedule_first_appointment',
    ].sort(),
  );
  const listed = await stack.db
    .selectFrom('audit_events')
    .select('action')
    .where('action', '=', 'tasks.listed')
    .where('request_id', '=', done.headers.get('x-request-id')!)
    .execute();
  expect(listed).toHaveLength(1);
});

test('when a case is cancelled, then its open waits are cancelled with it', async () => {
  const c = await CaseDriver.open(stack);
  expect(await kindsFor(DIRECTOR, c.caseId)).toEqual(['review_decision']);
  await c.act('cancel', { reason: 'the move fell through' }, STAFF);
  await eventually(async () => (await kindsFor(DIRECTOR, c.caseId)).length === 0);
  const cancelled = await stack.request('GET', `/v1/tasks?view=agency&state=cancelled&caseId=${c.caseId}`, {
    actor: DIRECTOR,
  });
  expect(cancelled.body.items.map((t: { kind: string }) => t.kind)).toEqual(['review_decision']);
});

test('when a director reassigns a task, then it leaves the role’s queue for the named person’s, and only fitting people may take it', async () => {
  const c = await CaseDriver.open(stack);
  const [review] = await queue(DIRECTOR, `?caseId=${c.caseId}`);
  const director2 = { id: 'director-2', role: 'clinical_director' as const };
  await stack.request('GET', '/v1/tasks', { actor: director2 }); // the user exists once it has a token
  await upsertUser(stack.db, {
    id: 'director-2',
    role: 'clinical_director',
    agencyId: 'agency-1',
    name: 'D2',
    email: 'd2@agency.example',
  });
  const toCounselor = await stack.request('POST', `/v1/tasks/${review!.taskId}/assignment`, {
    body: { assigneeId: COUNSELOR.id },
    actor: DIRECTOR,
  });
  expect([toCounselor.status, toCounselor.body.rule]).toEqual([422, 'role']);
  const byStaff = await stack.request('POST', `/v1/tasks/${review!.taskId}/assignment`, {
    body: { assigneeId: 'director-2' },
    actor: STAFF,
  });
  expect(byStaff.status).toBe(403);
  const moved = await stack.request('POST', `/v1/tasks/${review!.taskId}/assignment`, {
    body: { assigneeId: 'director-2' },
    actor: DIRECTOR,
  });
  expect(moved.status).toBe(200);
  expect((await queue(director2, `?caseId=${c.caseId}`)).map((t) => t.assignee)).toEqual([
    { role: 'clinical_director', userId: 'director-2' },
  ]);
  expect(await queue(DIRECTOR, `?caseId=${c.caseId}`)).toEqual([]);
  // The new assignee hears of it once, by email, with a link and nothing about the client.
  const told = await stack.db
    .selectFrom('outbox')
    .select(['recipient', 'payload'])
    .where('case_id', '=', c.caseId)
    .where('kind', '=', 'staff_email')
    .execute();
  expect(told.map((m) => m.recipient)).toEqual(['director-2']);
  expect(told[0]!.payload).toMatchObject({ caseLink: `/v1/cases/${c.caseId}` });
  const waitDone = await stack.request('POST', `/v1/tasks/${review!.taskId}/completion`, { body: {}, actor: DIRECTOR });
  expect([waitDone.status, waitDone.body.rule]).toEqual([409, 'step']);
});

test('when another agency or another counselor looks at the queue, then they see none of it', async () => {
  const c = await CaseDriver.open(stack, { counselorId: 'counselor-5' });
  const [review] = await queue(DIRECTOR, `?caseId=${c.caseId}`);
  const elsewhere = { ...DIRECTOR, agencyId: `agency-${randomUUID().slice(0, 6)}` };
  expect(await queue(elsewhere, `?view=agency&caseId=${c.caseId}`)).toEqual([]);
  const foreign = await stack.request('POST', `/v1/tasks/${review!.taskId}/assignment`, {
    body: { assigneeId: 'director-1' },
    actor: elsewhere,
  });
  expect(foreign.status).toBe(404);
  expect((await stack.request('GET', '/v1/tasks?view=agency', { actor: COUNSELOR })).status).toBe(403);
  expect((await stack.request('GET', '/v1/tasks', { actor: { id: 'admin-1', role: 'admin' } })).status).toBe(403);
  expect((await stack.request('GET', '/v1/tasks?sort=up', { actor: DIRECTOR })).status).toBe(400);
  expect((await stack.request('GET', '/v1/tasks?cursor=bogus', { actor: DIRECTOR })).status).toBe(400);
  const other = { id: 'counselor-5', role: 'counselor' as const };
  await c.approve();
  await eventually(async () => (await kindsFor(other, c.caseId)).join() === 'hold_conversation');
  expect(await kindsFor(COUNSELOR, c.caseId)).toEqual([]);
});

test('when the queue holds more than a page, then the cursor walks it once, overdue first', async () => {
  const agencyId = `agency-${randomUUID().slice(0, 6)}`;
  const director = { ...DIRECTOR, agencyId };
  for (let i = 0; i < 5; i++) await CaseDriver.open(stack, { agencyId });
  await stack.db
    .updateTable('tasks')
    .set({ due_at: new Date(Date.now() - 3_600_000) })
    .where('agency_id', '=', agencyId)
    .where('task_key', 'in', (eb) =>
      eb.selectFrom('tasks').select('task_key').where('agency_id', '=', agencyId).orderBy('task_key').limit(2),
    )
    .execute();
  const seen: { taskId: string; overdue: boolean }[] = [];
  let cursor: string | null = null;
  do {
    const page: { body: { items: { taskId: string; overdue: boolean }[]; next: string | null } } = await stack.request(
      'GET',
      `/v1/tasks?view=agency&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      {
        actor: director,
      },
    );
    seen.push(...page.body.items);
    cursor = page.body.next;
  } while (cursor);
  expect(seen).toHaveLength(5);
  expect(new Set(seen.map((t) => t.taskId)).size).toBe(5);
  expect(seen.map((t) => t.overdue)).toEqual([true, true, false, false, false]);
});

test('when a client carried a suicide-risk flag, then follow-up adds caring contacts over months; others get the policy’s checks', () => {
  const plan = followUpPlan({ ...DEFAULT_POLICY }, '2026-12-01', true);
  expect(plan.map((p) => [p.offsetDays, p.kind, p.dueOn])).toEqual([
    [7, 'follow_up', '2026-12-08'],
    [14, 'caring_contact', '2026-12-15'],
    [30, 'follow_up', '2026-12-31'],
    [45, 'caring_contact', '2027-01-15'],
    [90, 'caring_contact', '2027-03-01'],
    [180, 'caring_contact', '2027-05-30'],
    [365, 'caring_contact', '2027-12-01'],
  ]);
  expect(followUpPlan({ ...DEFAULT_POLICY }, '2026-12-01', false).map((p) => p.offsetDays)).toEqual([7, 30]);
});
