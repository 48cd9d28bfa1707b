import { randomUUID } from 'node:crypto';
import { listCaseAuditEvents } from '../db/audit';
import { readableDate } from '../domain/time';
import {
  COUNSELOR,
  CaseDriver,
  DIRECTOR,
  STAFF,
  caseBody,
  caseIdOf,
  putClient,
  release,
  saveHistory,
  today,
} from './support/cases';
import { type TestStack, startStack } from './support/stack';

/** A client's safety facts come from the agency's client record, stay current, and are checked when acting. */

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

const DV_ON_RECORD = {
  riskFlags: ['domestic_violence'],
  contact: { channels: [{ channel: 'mail', safe: false }], noContactAtHome: true },
};

async function toLetter(c: CaseDriver, choice = 'accept_proposed') {
  await c.act('safety-plan', { documentRef: 'EHR plan 12' }, COUNSELOR);
  await c.approve();
  await c.converse(choice);
}

describe('a case starts from the client record', () => {
  test('when a request tries to assert a client’s flags, contact or counselor, then 400: those are the record’s', async () => {
    const { agencyId, clientId, record, start } = caseBody(DV_ON_RECORD);
    await putClient(stack, agencyId, clientId, record);
    const res = await stack.request('POST', '/v1/cases', {
      body: {
        ...start,
        riskFlags: [],
        contact: { channels: [{ channel: 'mail', safe: true }], noContactAtHome: false },
        hasSubstanceUseRecords: false,
        counselorId: 'counselor-1',
      },
    });
    expect(res.status).toBe(400);
    expect((res.body.errors as { field: string }[]).map((e) => e.field).sort()).toEqual([
      'body.contact',
      'body.counselorId',
      'body.hasSubstanceUseRecords',
      'body.riskFlags',
    ]);
  });

  test('when a client on record with a domestic-violence flag and mail marked unsafe is closed, then the letter is held and the audit says safe_contact and why', async () => {
    const c = await CaseDriver.open(stack, { ...DV_ON_RECORD, kind: 'termination', reason: 'goals_met' });
    const opened = await c.view();
    expect(opened.process.facts).toMatchObject({ riskFlags: ['domestic_violence'], counselorId: COUNSELOR.id });
    await toLetter(c, 'decline_services');
    // A client at risk closes only with an accepting receiver; declining services escalates instead.
    await c.act(
      'referrals',
      { candidates: [{ providerId: 'clinician-2', name: 'Dr Two', external: false, contact: 'ext 2' }] },
      STAFF,
    );
    let view = await c.until((v) => v.process.referrals[0]?.state === 'sent');
    const referralId: string = view.process.referrals[0].referralId;
    await c.act(`referrals/${referralId}/response`, { response: 'accepted' }, STAFF);
    await c.act(`referrals/${referralId}/appointment`, { scheduledFor: `${today(7)}T15:00:00Z` }, STAFF);
    view = await c.until((v) => v.step === 'follow_up');
    expect(view.process.letter).toMatchObject({ delivery: 'held_for_in_person', channel: null });
    const outbox = await stack.db.selectFrom('outbox').select('kind').where('case_id', '=', c.caseId).execute();
    expect(outbox.filter((m) => m.kind === 'closure_letter')).toEqual([]);
    const events = await listCaseAuditEvents(stack.db, c.caseId);
    const held = events.find((e) => e.action === 'letter.held_for_in_person');
    expect(held?.outcome_reason).toBe(
      'safe_contact: a domestic-violence flag and "no contact at home" on record and no channel the client confirmed safe',
    );
    const letter = await stack.request('GET', `/v1/cases/${c.caseId}/letter`);
    expect(letter.body).toContain(readableDate(today()));
  });

  test('when the client is unknown, another agency’s, or another counselor’s for a counselor, then 422 names it and nothing starts', async () => {
    const unknown = await stack.request('POST', '/v1/cases', {
      body: { clientId: `nobody-${randomUUID().slice(0, 6)}`, kind: 'termination', reason: 'goals_met' },
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.errors).toEqual([{ field: 'body.clientId', message: 'unknown client' }]);

    const theirs = caseBody({ counselorId: 'counselor-7' });
    await putClient(stack, theirs.agencyId, theirs.clientId, theirs.record);
    const asCounselor = await stack.request('POST', '/v1/cases', { body: theirs.start, actor: COUNSELOR });
    expect(asCounselor.status).toBe(422);
    expect(asCounselor.body.detail).toBe(`no client ${theirs.clientId} on your caseload`);
    const rows = await stack.db
      .selectFrom('cases')
      .select('case_id')
      .where('client_id', '=', theirs.clientId)
      .execute();
    expect(rows).toEqual([]);
    const denied = await stack.db
      .selectFrom('audit_events')
      .select(['action', 'outcome', 'agency_id'])
      .where('client_id', '=', theirs.clientId)
      .where('actor_id', '=', COUNSELOR.id)
      .execute();
    expect(denied).toContainEqual({ action: 'client.read_denied', outcome: 'refused', agency_id: 'agency-1' });

    const own = caseBody({ counselorId: COUNSELOR.id });
    await putClient(stack, own.agencyId, own.clientId, own.record);
    const mine = await stack.request('POST', '/v1/cases', { body: own.start, actor: COUNSELOR });
    expect(mine.status).toBe(202);
    const view = await new CaseDriver(stack, caseIdOf(mine)).until((v) => v.status === 'open');
    expect(view.counselorId).toBe(COUNSELOR.id);
  });

  test('when the record says substance-use records and the request never mentions them, then Part 2 still holds the disclosure', async () => {
    const c = await CaseDriver.open(stack, { hasSubstanceUseRecords: true });
    await c.approve();
    await c.converse();
    await c.act('consents', release('harbor'), STAFF);
    await c.act(
      'referrals',
      { candidates: [{ providerId: 'harbor', name: 'Harbor Counseling', external: true, contact: '555-0101' }] },
      STAFF,
    );
    const view = await c.until((v) => v.blockers.some((b: { rule: string }) => b.rule === 'consent_before_disclosure'));
    expect(view.blockers).toContainEqual({
      rule: 'consent_before_disclosure',
      detail:
        '42 CFR Part 2: the client has substance-use-disorder records and no release naming Harbor Counseling covers them explicitly',
    });
    expect(
      await stack.db.selectFrom('disclosures').select('disclosure_id').where('case_id', '=', c.caseId).execute(),
    ).toEqual([]);
  });

  test('when the only release names another recipient, then the case names consent_before_disclosure and the release on file', async () => {
    const c = await CaseDriver.open(stack);
    await c.approve();
    await c.converse();
    await c.act('consents', release('lakeside'), STAFF);
    await c.act(
      'referrals',
      { candidates: [{ providerId: 'northside', name: 'Northside', external: true, contact: '555-0100' }] },
      STAFF,
    );
    const view = await c.until((v) => v.process.referrals[0]?.state === 'proposed' && v.waitingFor.length > 0);
    expect(view.waitingFor[0]).toBe(
      'consent_before_disclosure: no release of information names Northside (the releases on file name lakeside)',
    );
    expect(view.blockers[0]).toMatchObject({ rule: 'consent_before_disclosure' });
  });

  test('when the notice deadline has passed without the client told, then blockers name deadlines with the date', async () => {
    // Ten days before the last day, with 14 days' notice: the deadline passed four days ago.
    const c = await CaseDriver.open(stack, { lastDay: today(10) });
    const view = await c.until((v) => v.status === 'open');
    expect(view.blockers).toContainEqual({
      rule: 'deadlines',
      detail: `the client was not told by ${today(-4)}, 14 days before the counselor's last day (${today(10)})`,
      due: today(-4),
    });
    expect(view.waitingFor).toContain(`deadlines: the client to be told by ${today(-4)}`);
  });
});

describe('facts stay current', () => {
  test('when only the email address on the record changes, then the case records no change and holds no address; when the address goes, that is recorded', async () => {
    const c = await CaseDriver.open(stack, { kind: 'termination', reason: 'goals_met', lastDay: undefined });
    const { record } = caseBody();
    expect((await c.view()).process.facts.contact).toEqual({
      channels: record.contact.channels,
      noContactAtHome: false,
      hasEmail: true,
      hasPostalAddress: false,
    });
    const put = async (changes: Record<string, unknown>) => {
      const res = await stack.request('PUT', `/v1/clients/${c.clientId}`, { body: { ...record, ...changes } });
      expect(res.body.openCasesTold).toBe(1);
    };
    const moved = { ...record.contact, email: 'sam.moved@client.example' };
    await put({ contact: moved });
    // The record's changes reach the case in order: once the flag is there, the new address has been read too.
    await put({ contact: moved, riskFlags: ['recent_relapse'] });
    await c.until((v) => v.process.facts.riskFlags.includes('recent_relapse'));
    await put({ contact: { ...moved, email: null }, riskFlags: ['recent_relapse'] });
    const view = await c.until((v) => v.process.facts.contact.hasEmail === false);

    const updates = (await listCaseAuditEvents(stack.db, c.caseId)).filter((e) => e.action === 'case.facts_updated');
    expect(updates.map((e) => e.outcome_reason)).toEqual([
      'the client record changed: risk flags',
      'the client record changed: contact preferences',
    ]);
    expect(JSON.stringify(view.process)).not.toContain('@client.example');
    const row = await stack.db
      .selectFrom('cases')
      .select(['state', 'contact'])
      .where('case_id', '=', c.caseId)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain('@client.example');
    await saveHistory(c.handle(), 'facts-refreshed');
  });

  test('when a domestic-violence flag is put on the record of a client with an open case, then the case takes it at once and risk first holds it', async () => {
    const c = await CaseDriver.open(stack, {
      kind: 'termination',
      reason: 'goals_met',
      contact: { channels: [{ channel: 'mail', safe: false }], noContactAtHome: false },
    });
    expect((await c.view()).process.facts.riskFlags).toEqual([]);
    const { record } = caseBody({ ...DV_ON_RECORD });
    const put = await stack.request('PUT', `/v1/clients/${c.clientId}`, { body: record });
    expect(put.status).toBe(200);
    expect(put.body.openCasesTold).toBe(1);
    const view = await c.until((v) => v.process.facts.riskFlags.includes('domestic_violence'));
    expect(view.blockers.map((b: { rule: string }) => b.rule)).toContain('risk_first');
    const events = await listCaseAuditEvents(stack.db, c.caseId);
    expect(events.find((e) => e.action === 'case.facts_updated')?.outcome_reason).toMatch(
      /the client record changed: risk flags, contact preferences/,
    );
    const clientEvents = await stack.db
      .selectFrom('audit_events')
      .select(['action', 'before'])
      .where('client_id', '=', c.clientId)
      .where('action', '=', 'client.updated')
      .execute();
    expect(clientEvents[0]?.before).toMatchObject({ riskFlags: [] });
  });

  test('when a risk flag is raised on a case, then it is written to the client record and reaches the case', async () => {
    const c = await CaseDriver.open(stack);
    const res = await c.act('risk-flags', { flag: 'suicide_risk' }, COUNSELOR);
    expect(res.process.facts.riskFlags).toEqual(['suicide_risk']);
    expect(res.blockers.map((b: { rule: string }) => b.rule)).toContain('risk_first');
    const client = await stack.request('GET', `/v1/clients/${c.clientId}`, { actor: DIRECTOR });
    expect(client.body.riskFlags).toEqual(['suicide_risk']);
  });

  test('when mail is withdrawn as safe after the decision, then an outreach by mail is refused on the record as it stands', async () => {
    const c = await CaseDriver.open(stack, {
      kind: 'termination',
      reason: 'client_stopped_attending',
      lastDay: undefined,
      contact: { channels: [{ channel: 'mail', safe: true }], noContactAtHome: true },
    });
    await c.approve();
    await c.until((v) => v.step === 'client_conversation');
    await stack.db
      .updateTable('clients')
      .set({ contact: JSON.stringify({ channels: [{ channel: 'mail', safe: false }], noContactAtHome: true }) })
      .where('agency_id', '=', 'agency-1')
      .where('client_id', '=', c.clientId)
      .execute();
    // Changed behind the API's back (no signal): the check at the moment of acting still reads the record.
    const refused = await c.act('outreach-attempts', { attemptedOn: today(), channel: 'mail' }, COUNSELOR, 422);
    expect(refused.rule).toBe('safe_contact');
    expect(refused.detail).toMatch(/"no contact at home" on record/);
  });
});
