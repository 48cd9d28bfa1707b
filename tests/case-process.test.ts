import { randomUUID } from 'node:crypto';
import { listCaseAuditEvents } from '../db/audit';
import {
  COUNSELOR,
  CaseDriver,
  DIRECTOR,
  STAFF,
  caseBody,
  putClient,
  release,
  saveHistory,
  today,
} from './support/cases';
import { type TestStack, startStack, tokenFor } from './support/stack';

/** Every path of the case process through the API, on the real Temporal dev server and PostgreSQL. */

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

const internal = (id: string) => ({
  providerId: id,
  name: `Dr. ${id}`,
  external: false,
  contact: `${id}@agency.example`,
});
const external = (id: string) => ({
  providerId: id,
  name: `${id} Counseling`,
  external: true,
  contact: `intake@${id}.example`,
});

async function disclosures(caseId: string) {
  return stack.db.selectFrom('disclosures').selectAll().where('case_id', '=', caseId).orderBy('disclosed_at').execute();
}

async function actions(caseId: string) {
  return (await listCaseAuditEvents(stack.db, caseId)).map((e) => e.action);
}

describe('the process end to end', () => {
  test('when a relocating counselor’s client is transferred, then review, conversation, handoff, letter and follow-up run to a closed case', async () => {
    const c = await CaseDriver.open(stack);
    expect((await c.view()).waitingFor[0]).toMatch(/clinical director other than counselor-1/);
    await c.approve();
    await c.converse('accept_proposed');
    let view = await c.act('referrals', { candidates: [internal('clin-7')] }, STAFF);
    view = await c.until((v) => v.process.referrals[0]?.state === 'sent');
    const referralId: string = view.process.referrals[0].referralId;
    await c.act(`referrals/${referralId}/response`, { response: 'accepted' }, STAFF);
    await c.act(`referrals/${referralId}/appointment`, { scheduledFor: `${today(5)}T15:00:00Z` }, STAFF);
    view = await c.until((v) => v.step === 'follow_up');
    expect(view.process.letter).toMatchObject({ delivery: 'queued', channel: 'email' });
    await c.act(`referrals/${referralId}/appointment-outcome`, { outcome: 'kept' }, COUNSELOR);
    view = await c.until((v) => v.status === 'closed');
    expect(view.process.conversation.informedInTime).toBe(true);
    expect(view.blockers).toEqual([]);

    const letter = await stack.request('GET', `/v1/cases/${c.caseId}/letter`, { actor: DIRECTOR });
    expect(letter.status).toBe(200);
    expect(letter.body).toContain('Dr. clin-7');
    expect(letter.body).toContain('988');
    expect(letter.body).toContain('relocating');
    const pdf = await fetch(`${stack.url}/v1/cases/${c.caseId}/letter.pdf`, {
      headers: { authorization: `Bearer ${await tokenFor(stack.db, DIRECTOR)}` },
    });
    const bytes = Buffer.from(await pdf.arrayBuffer());
    expect(bytes.subarray(0, 5).toString()).toBe('%PDF-');
    const { createHash } = await import('node:crypto');
    expect(pdf.headers.get('x-checksum-sha256')).toBe(createHash('sha256').update(bytes).digest('hex'));

    expect(await actions(c.caseId)).toEqual(
      expect.arrayContaining([
        'case.opened',
        'decision.approved',
        'conversation.held',
        'referral.proposed',
        'referral.sent',
        'referral.accepted',
        'referral.first_appointment_scheduled',
        'letter.generated',
        'letter.queued',
        'referral.first_appointment_kept',
        'follow_up.engaged',
        'case.step.done',
      ]),
    );
    expect(await disclosures(c.caseId)).toEqual([]);
    await saveHistory(c.handle(), 'relocation-transfer');
  });

  test('when a referral is declined, then it re-routes to the next candidate, which accepts; each outside send is a recorded disclosure', async () => {
    const c = await CaseDriver.open(stack, { kind: 'referral', reason: 'outside_scope', lastDay: undefined });
    await c.approve();
    await c.converse('accept_proposed');
    await c.act('consents', release('northside'), STAFF);
    await c.act('consents', release('riverbend'), STAFF);
    await c.act('referrals', { candidates: [external('northside'), external('riverbend')] }, STAFF);
    let view = await c.until((v) => v.process.referrals[0]?.state === 'sent');
    await c.act(
      `referrals/${view.process.referrals[0].referralId}/response`,
      { response: 'declined', declinedBy: 'provider', declineReason: 'no capacity' },
      STAFF,
    );
    view = await c.until((v) => v.process.referrals[1]?.state === 'sent');
    expect(view.process.referrals[0].state).toBe('re_routed');
    await c.act(`referrals/${view.process.referrals[1].referralId}/response`, { response: 'accepted' }, STAFF);
    await c.act(
      `referrals/${view.process.referrals[1].referralId}/appointment`,
      { scheduledFor: `${today(3)}T10:00:00Z` },
      STAFF,
    );
    view = await c.until((v) => v.step === 'follow_up');
    const rows = await disclosures(c.caseId);
    expect(rows.map((d) => d.recipient_provider_id)).toEqual(['northside', 'riverbend']);
    const referrals = await stack.db
      .selectFrom('referrals')
      .select(['provider_id', 'state'])
      .where('case_id', '=', c.caseId)
      .orderBy('provider_id')
      .execute();
    expect(referrals).toEqual([
      { provider_id: 'northside', state: 're_routed' },
      { provider_id: 'riverbend', state: 'first_appointment_scheduled' },
    ]);
    await saveHistory(c.handle(), 'referral-rerouted');
  });

  test('when outreach attempts come too close together, before the case opened or in the future, then each is refused', async () => {
    const c = await CaseDriver.open(stack, {
      kind: 'termination',
      reason: 'client_stopped_attending',
      lastDay: undefined,
    });
    await c.approve();
    await c.act('outreach-attempts', { attemptedOn: today(), channel: 'phone' }, COUNSELOR);
    const tooSoon = await c.act('outreach-attempts', { attemptedOn: today(), channel: 'phone' }, COUNSELOR, 422);
    expect(tooSoon.rule).toBe('no_abandonment');
    const beforeOpening = await c.act(
      'outreach-attempts',
      { attemptedOn: today(-3), channel: 'phone' },
      COUNSELOR,
      400,
    );
    expect(beforeOpening.detail).toMatch(/before the case opened/);
    const future = await c.act('outreach-attempts', { attemptedOn: today(3), channel: 'phone' }, COUNSELOR, 400);
    expect(future.detail).toMatch(/in the future/);
    expect((await c.view()).process.conversation.outreach).toHaveLength(1);
    const events = await listCaseAuditEvents(stack.db, c.caseId);
    expect(events.find((e) => e.action === 'action.recordOutreachAttempt')).toMatchObject({
      outcome: 'refused',
      actor_id: COUNSELOR.id,
    });
  });

  test('when a client stops coming, then documented outreach attempts, spaced out, let the process go on without the conversation', async () => {
    // An agency whose policy spaces attempts 0 days apart, so three can be made today.
    const agencyId = `agency-${randomUUID().slice(0, 6)}`;
    const set = await stack.request('PUT', `/v1/agencies/${agencyId}/policy`, {
      body: { agencyName: 'Eastside', agencyPhone: '555-0101', policy: { outreachSpacingDays: 0 } },
      actor: { id: 'admin-1', role: 'admin', agencyId },
    });
    expect(set.status).toBe(200);
    const counselor = { ...COUNSELOR, agencyId };
    const c = await CaseDriver.open(stack, {
      agencyId,
      kind: 'termination',
      reason: 'client_stopped_attending',
      lastDay: undefined,
    });
    await c.act('review', { decision: 'approve', rationale: 'stopped attending' }, { ...DIRECTOR, agencyId });
    await c.act('outreach-attempts', { attemptedOn: today(), channel: 'phone' }, counselor);
    const unsafe = await c.act(
      'outreach-attempts',
      { attemptedOn: today(), channel: 'carrier-pigeon' },
      counselor,
      400,
    );
    expect(unsafe.status).toBe(400);
    await c.act('outreach-attempts', { attemptedOn: today(), channel: 'portal' }, counselor);
    let view = await c.act('outreach-attempts', { attemptedOn: today(), channel: 'phone' }, counselor);
    expect(view.process.conversation.precludedBy).toBe('outreach_exhausted');
    // An unreachable client cannot choose a referral: the letter (with other resources) goes by a safe channel.
    view = await c.until((v) => v.step === 'follow_up');
    expect(view.process.letter).toMatchObject({ delivery: 'queued', channel: 'email' });
    const events = await listCaseAuditEvents(stack.db, c.caseId);
    expect(events.find((e) => e.action === 'conversation.precluded')?.outcome_reason).toMatch(
      /3 documented outreach attempts/,
    );
  });

  test('when a risk flag is raised after the conversation, then closing waits for a safety plan and a director, and says so', async () => {
    const c = await CaseDriver.open(stack);
    await c.approve();
    await c.converse('accept_proposed');
    await c.act('risk-flags', { flag: 'suicide_risk' }, COUNSELOR);
    await c.act('referrals', { candidates: [internal('clin-9')] }, STAFF);
    let view = await c.until((v) => v.process.referrals[0]?.state === 'sent');
    const referralId = view.process.referrals[0].referralId;
    await c.act(`referrals/${referralId}/response`, { response: 'accepted' }, STAFF);
    await c.act(`referrals/${referralId}/appointment`, { scheduledFor: `${today(2)}T09:00:00Z` }, STAFF);
    view = await c.until((v) => v.step === 'closure_letter');
    expect(view.blockers).toEqual([
      { rule: 'risk_first', detail: expect.stringMatching(/safety plan must be documented/) },
    ]);
    expect(
      await stack.db.selectFrom('letters').select('letter_id').where('case_id', '=', c.caseId).executeTakeFirst(),
    ).toBeUndefined();

    const early = await c.act('safety-plan/approval', {}, DIRECTOR, 422);
    expect(early.rule).toBe('risk_first');
    await c.act('safety-plan', { documentRef: 'EHR safety plan 2026-11-22' }, COUNSELOR);
    const byCounselor = await c.act('safety-plan/approval', {}, COUNSELOR, 403);
    expect(byCounselor.detail).toMatch(/for clinical_director/);
    await c.act('safety-plan/approval', {}, DIRECTOR);
    view = await c.until((v) => v.step === 'follow_up');
    expect(view.process.letter.delivery).toBe('queued');
  });

  test('when a consent is revoked mid-handoff, then the pending send stops and nothing more is disclosed to that provider', async () => {
    const c = await CaseDriver.open(stack);
    await c.approve();
    await c.converse('accept_proposed');
    const withConsent = await c.act('consents', release('lakeside'), STAFF);
    const consentId: string = withConsent.process.consents[0].consentId;
    await c.act('referrals', { candidates: [external('lakeside')] }, STAFF);
    let view = await c.until((v) => v.process.referrals[0]?.state === 'sent');
    view = await c.act(`consents/${consentId}/revocation`, {}, STAFF);
    expect(view.process.referrals[0].state).toBe('withdrawn');
    expect(view.process.referrals[0].history.at(-1).reason).toBe('consent revoked');
    // A new proposal to the same provider waits: the only release naming it is revoked.
    await c.act('referrals', { candidates: [external('lakeside')] }, STAFF);
    view = await c.until((v) => v.process.referrals.length === 2);
    expect(view.process.referrals[1].state).toBe('proposed');
    expect(view.waitingFor[0]).toMatch(
      /^consent_before_disclosure: the release naming lakeside Counseling was revoked/,
    );
    expect(view.blockers).toContainEqual({
      rule: 'consent_before_disclosure',
      detail: 'the release naming lakeside Counseling was revoked',
    });
    expect((await disclosures(c.caseId)).length).toBe(1);
    const consent = await stack.db
      .selectFrom('consents')
      .select('revoked_at')
      .where('consent_id', '=', consentId)
      .executeTakeFirstOrThrow();
    expect(consent.revoked_at).toBeInstanceOf(Date);
  });

  test('when a client with a domestic-violence flag has no confirmed safe channel, then the letter is held for in-person delivery', async () => {
    const c = await CaseDriver.open(stack, {
      kind: 'termination',
      reason: 'goals_met',
      lastDay: undefined,
      riskFlags: ['domestic_violence'],
      contact: {
        channels: [
          { channel: 'mail', safe: false },
          { channel: 'email', safe: false },
        ],
        noContactAtHome: true,
      },
    });
    const refused = await c.act('review', { decision: 'approve', rationale: 'goals met' }, DIRECTOR, 422);
    expect(refused.rule).toBe('risk_first');
    await c.act('safety-plan', { documentRef: 'EHR safety plan' }, COUNSELOR);
    await c.approve();
    await c.converse('accept_proposed');
    await c.act('referrals', { candidates: [internal('clin-3')] }, STAFF);
    let view = await c.until((v) => v.process.referrals[0]?.state === 'sent');
    const referralId = view.process.referrals[0].referralId;
    await c.act(`referrals/${referralId}/response`, { response: 'accepted' }, STAFF);
    await c.act(`referrals/${referralId}/appointment`, { scheduledFor: `${today(2)}T09:00:00Z` }, STAFF);
    view = await c.until((v) => v.step === 'follow_up');
    expect(view.process.letter).toMatchObject({ delivery: 'held_for_in_person', channel: null });
    const outbox = await stack.db
      .selectFrom('outbox')
      .select('kind')
      .where('case_id', '=', c.caseId)
      .where('kind', '=', 'closure_letter')
      .execute();
    expect(outbox).toEqual([]);
    const letter = await stack.request('GET', `/v1/cases/${c.caseId}/letter`, { actor: DIRECTOR });
    expect(letter.headers.get('x-delivery')).toBe('held_for_in_person');
    expect(letter.body).toContain('1-800-799-7233');
  });
});

describe('rules refused with a clear error', () => {
  test('when the case’s own counselor, or someone who is not a director, reviews the decision, then it is refused and nothing changes', async () => {
    const c = await CaseDriver.open(stack, { counselorId: 'director-2' });
    const own = await c.act(
      'review',
      { decision: 'approve', rationale: 'ok' },
      { id: 'director-2', role: 'clinical_director' },
      422,
    );
    expect(own).toMatchObject({ rule: 'separation_of_duties', status: 422 });
    expect(own.detail).toMatch(/cannot review its decision/);
    const staff = await c.act('review', { decision: 'approve', rationale: 'ok' }, STAFF, 403);
    expect(staff.detail).toMatch(/for clinical_director/);
    expect((await c.view()).step).toBe('decision_review');
    const refusals = (await listCaseAuditEvents(stack.db, c.caseId)).filter((e) => e.outcome === 'refused');
    expect(refusals.map((e) => e.outcome_reason)).toEqual([expect.stringMatching(/^separation_of_duties/)]);
  });

  test('when a decision is sent back, then the counselor revises it and it is reviewed again', async () => {
    const c = await CaseDriver.open(stack);
    await c.act('review', { decision: 'send_back', rationale: 'say more about continuity' }, DIRECTOR);
    await c.act('review', { decision: 'approve', rationale: 'again' }, DIRECTOR, 409);
    await c.act('revision', { rationale: 'continuity with clin-7 arranged' }, COUNSELOR);
    const view = await c.approve();
    expect(view.process.review).toMatchObject({ state: 'approved', rounds: 2 });
  });

  test('when a decision is rejected, then the case ends rejected with the reason kept', async () => {
    const c = await CaseDriver.open(stack);
    await c.act('review', { decision: 'reject', rationale: 'the client is mid-crisis; do not transfer now' }, DIRECTOR);
    const view = await c.until((v) => v.status === 'rejected');
    expect(view.process.review.lastRationale).toMatch(/mid-crisis/);
    expect(await c.handle().result()).toMatchObject({ status: 'rejected' });
  });

  test('when a client with a no-contact-at-home preference is reached by an unconfirmed channel, then the attempt is refused (safe contact)', async () => {
    const c = await CaseDriver.open(stack, {
      kind: 'termination',
      reason: 'client_stopped_attending',
      lastDay: undefined,
      contact: {
        channels: [
          { channel: 'mail', safe: false },
          { channel: 'phone', safe: true },
        ],
        noContactAtHome: true,
      },
    });
    await c.approve();
    const refused = await c.act('outreach-attempts', { attemptedOn: today(), channel: 'mail' }, COUNSELOR, 422);
    expect(refused.rule).toBe('safe_contact');
    const view = await c.act('outreach-attempts', { attemptedOn: today(), channel: 'phone' }, COUNSELOR);
    expect(view.process.conversation.outreach).toEqual([{ attemptedOn: today(), channel: 'phone' }]);
  });

  test('when a client who stopped coming is to be closed without outreach, then the waiver is refused: outreach first', async () => {
    const c = await CaseDriver.open(stack, {
      kind: 'termination',
      reason: 'client_stopped_attending',
      lastDay: undefined,
    });
    await c.approve();
    const refused = await c.act(
      'conversation/waiver',
      { basis: 'client_initiated', rationale: 'gone quiet' },
      DIRECTOR,
      422,
    );
    expect(refused.rule).toBe('no_abandonment');
  });

  test('when a client at suicide risk would be ended for non-payment, then approval is refused (NASW 1.17(c))', async () => {
    const c = await CaseDriver.open(stack, {
      kind: 'termination',
      reason: 'financial',
      lastDay: undefined,
      riskFlags: ['suicide_risk'],
    });
    await c.act('safety-plan', { documentRef: 'EHR safety plan' }, COUNSELOR);
    const refused = await c.act('review', { decision: 'approve', rationale: 'unpaid balance' }, DIRECTOR, 422);
    expect(refused.rule).toBe('no_abandonment');
    expect(refused.detail).toMatch(/NASW 1\.17\(c\)/);
  });

  test('when the ending is not client-initiated, then going on without the conversation is refused (no abandonment)', async () => {
    const c = await CaseDriver.open(stack);
    await c.approve();
    await c.until((v) => v.step === 'client_conversation');
    const refused = await c.act(
      'conversation/waiver',
      { basis: 'client_initiated', rationale: 'client did not call back' },
      DIRECTOR,
      422,
    );
    expect(refused.rule).toBe('no_abandonment');
    expect(refused.detail).toMatch(/not initiated by the client/);
  });

  test('when the client has substance-use records and the release does not cover them, then nothing is sent (42 CFR Part 2)', async () => {
    const c = await CaseDriver.open(stack, { hasSubstanceUseRecords: true });
    await c.approve();
    await c.converse('accept_proposed');
    await c.act('consents', release('harbor'), STAFF);
    await c.act('referrals', { candidates: [external('harbor')] }, STAFF);
    let view = await c.until((v) => v.process.referrals.length === 1);
    expect(view.process.referrals[0].state).toBe('proposed');
    // Part 2 is named as such: the release exists, but does not cover substance-use records.
    expect(view.blockers).toContainEqual({
      rule: 'consent_before_disclosure',
      detail: expect.stringMatching(/^42 CFR Part 2: the client has substance-use-disorder records/),
    });
    expect(view.waitingFor[0]).toMatch(/42 CFR Part 2/);
    await c.act('consents', release('harbor', { coversSubstanceUseRecords: true }), STAFF);
    view = await c.until((v) => v.process.referrals[0].state === 'sent');
    const [disclosure] = await disclosures(c.caseId);
    expect(disclosure).toMatchObject({ recipient_provider_id: 'harbor', substance_use_records: true });
    expect(disclosure!.redisclosure_notice).toMatch(/42 CFR part 2/);
  });

  test('when a client declines further services, then the choice is recorded and the referral step is skipped (client autonomy)', async () => {
    const c = await CaseDriver.open(stack, { kind: 'termination', reason: 'goals_met', lastDay: undefined });
    await c.approve();
    await c.converse('decline_services');
    const view = await c.until((v) => v.step === 'follow_up');
    expect(view.process.referrals).toEqual([]);
    expect(await actions(c.caseId)).toContain('referral.skipped');
  });

  test('when bad input reaches an action, then 400 names the field and the case is unchanged', async () => {
    const c = await CaseDriver.open(stack);
    const res = await c.act('review', { decision: 'maybe', rationale: '', extra: 1 }, DIRECTOR, 400);
    expect(res.errors.map((e: { field: string }) => e.field).sort()).toEqual([
      'body.decision',
      'body.extra',
      'body.rationale',
    ]);
    const future = await (async () => {
      await c.approve();
      return c.act(
        'conversation',
        { heldOn: today(3), clientChoice: 'accept_proposed', lastSessionDate: today(3) },
        COUNSELOR,
        400,
      );
    })();
    expect(future.detail).toMatch(/future date/);
    const nul = await c.act('revision', { rationale: 'a\u0000b' }, COUNSELOR, 400);
    expect(nul.errors[0]).toMatchObject({ field: 'body.rationale', message: 'control characters are not allowed' });
    const missing = await stack.request('POST', `/v1/cases/${randomUUID()}/review`, {
      body: { decision: 'approve', rationale: 'x' },
      actor: DIRECTOR,
    });
    expect(missing.status).toBe(404);
  });

  test('when a relocation has no last day, or a past one, then 400 and nothing starts', async () => {
    const noDayCase = caseBody({ lastDay: undefined });
    await putClient(stack, noDayCase.agencyId, noDayCase.clientId, noDayCase.record);
    const noDay = await stack.request('POST', '/v1/cases', { body: noDayCase.start, actor: STAFF });
    expect(noDay.status).toBe(400);
    expect(noDay.body.errors[0].field).toBe('body.lastDay');
    const pastCase = caseBody({ lastDay: today(-1) });
    await putClient(stack, pastCase.agencyId, pastCase.clientId, pastCase.record);
    const past = await stack.request('POST', '/v1/cases', { body: pastCase.start, actor: STAFF });
    expect(past.status).toBe(400);
    expect(past.body.detail).toMatch(/in the past/);
  });
});

test('when an agency sets its policy, then new cases copy it at start and running cases keep theirs', async () => {
  const agencyId = `agency-${randomUUID().slice(0, 6)}`;
  const admin = { id: `admin-${agencyId}`, role: 'admin' as const, agencyId };
  const refused = await stack.request('PUT', `/v1/agencies/${agencyId}/policy`, {
    body: { agencyName: 'Northside', agencyPhone: '555-0100', policy: { outreachAttempts: 2 } },
    actor: { ...STAFF, agencyId },
  });
  expect(refused.status).toBe(403);
  const before = await CaseDriver.open(stack, { agencyId });
  const set = await stack.request('PUT', `/v1/agencies/${agencyId}/policy`, {
    body: {
      agencyName: 'Northside',
      agencyPhone: '555-0100',
      policy: { outreachAttempts: 2, followUpOffsetsDays: [7, 30, 90] },
    },
    actor: admin,
  });
  expect(set.status).toBe(200);
  const after = await CaseDriver.open(stack, { agencyId });
  expect((await before.view()).process.policy.outreachAttempts).toBe(3);
  expect((await after.view()).process.policy).toMatchObject({
    outreachAttempts: 2,
    followUpOffsetsDays: [7, 30, 90],
    noticeDays: 14,
  });
});
