import { randomUUID } from 'node:crypto';
import { COUNSELOR, CaseDriver, DIRECTOR, today } from './support/cases';
import { type TestStack, startStack } from './support/stack';

/** The same action delivered twice (a retried call, a lost answer) is applied once. */

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

async function eventsOf(caseId: string, action: string) {
  return stack.db
    .selectFrom('audit_events')
    .select(['event_key', 'request_id'])
    .where('case_id', '=', caseId)
    .where('action', '=', action)
    .execute();
}

test('when an action is sent again with its Idempotency-Key, then both calls get the same answer and it is applied once', async () => {
  const c = await CaseDriver.open(stack, { kind: 'referral', reason: 'outside_scope', lastDay: undefined });
  const key = randomUUID();
  const body = { decision: 'approve', rationale: 'outside our scope; referral planned' };
  const send = () =>
    stack.request('POST', `/v1/cases/${c.caseId}/review`, {
      body,
      actor: DIRECTOR,
      headers: { 'Idempotency-Key': key },
    });
  // Sent twice at once, then once more after the first answers, as a client that timed out would.
  const [first, second] = await Promise.all([send(), send()]);
  const third = await send();
  for (const res of [first, second, third]) expect(res.status).toBe(200);
  expect(second.body).toEqual(first.body);
  expect(third.body).toEqual(first.body);
  expect(await eventsOf(c.caseId, 'decision.approved')).toHaveLength(1);
  // The same key on another action is refused, not replayed.
  const other = await stack.request('POST', `/v1/cases/${c.caseId}/review`, {
    body: { ...body, rationale: 'something else' },
    actor: DIRECTOR,
    headers: { 'Idempotency-Key': key },
  });
  expect(other.status).toBe(422);
});

test('when Temporal delivers one action id twice under different update ids, then the case applies it once and answers both', async () => {
  const c = await CaseDriver.open(stack, { kind: 'termination', reason: 'goals_met', lastDay: undefined });
  await c.approve();
  await c.until((v) => v.step === 'client_conversation');
  const handle = c.handle();
  const attempt = {
    actor: { ...COUNSELOR },
    requestId: null,
    actionId: `${COUNSELOR.id}:${randomUUID()}`,
    attemptedOn: today(),
    channel: 'phone',
  };
  // The update ids differ (as after the server lost its record of the first): only the case's memory dedupes.
  const answers = await Promise.all(
    [1, 2, 3].map(() => handle.executeUpdate('recordOutreachAttempt', { updateId: randomUUID(), args: [attempt] })),
  );
  const again = await handle.executeUpdate('recordOutreachAttempt', { updateId: randomUUID(), args: [attempt] });
  for (const answer of [...answers, again] as { state: { conversation: { outreach: unknown[] } } }[]) {
    expect(answer.state.conversation.outreach).toHaveLength(1);
  }
  expect(await eventsOf(c.caseId, 'conversation.outreach_attempted')).toHaveLength(1);
  // A new action id is a new action, checked by the rules as ever (a second attempt the same day is too soon).
  const refused = await handle
    .executeUpdate('recordOutreachAttempt', {
      updateId: randomUUID(),
      args: [{ ...attempt, actionId: `${COUNSELOR.id}:${randomUUID()}` }],
    })
    .then(
      () => 'applied',
      (error: Error) => (error.cause as Error | undefined)?.message ?? error.message,
    );
  expect(refused).toMatch(/days/);
});
