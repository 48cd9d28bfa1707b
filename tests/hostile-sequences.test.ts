import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  type Action,
  type CaseModel,
  type Candidate,
  type Channel,
  type Choice,
  type ClientRecord,
  FLAGS,
  type Projection,
  type Reason,
  type Who,
  addDays,
  apply,
  approvalCovers,
  atRisk,
  channelAllowed,
  currentReferral,
  expectOutcome,
  newModel,
  pickConsent,
  pickReferral,
  planCovers,
  projectModel,
  projectService,
  releaseFor,
  settle,
} from './support/case-model';
import { TEST_DIR } from './support/context';
import { type ApiResponse, type TestStack, startStack } from './support/stack';

/**
 * Hostile sequences: random actions on one case by random people (the case's counselor and another, staff,
 * directors, compliance, an admin, someone of another agency), in random order, against the real stack, each
 * answer held to an independent model of DOMAIN.md (tests/support/case-model.ts). After every command: no 5xx,
 * every refusal a problem naming a rule (or a plain access/validation answer), the case where the model says;
 * after every sequence: the rules hold in the database and the audit trail.
 *
 * MODEL_SEQUENCES (default 20) sequences of up to MODEL_COMMANDS (default 15) commands, over MODEL_LANES
 * (default 2) cases at a time; MODEL_SEED replays a run, MODEL_SHRINK=1 shrinks a failure (slow: each try
 * replays against the real stack).
 */

const SEQUENCES = Number(process.env.MODEL_SEQUENCES ?? 20);
const MAX_COMMANDS = Number(process.env.MODEL_COMMANDS ?? 15);
const LANES = Math.max(1, Math.min(Number(process.env.MODEL_LANES ?? 2), SEQUENCES));
const SEED = process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : Date.now() % 2 ** 31;

const RULES = new Set([
  'separation_of_duties',
  'no_abandonment',
  'risk_first',
  'safe_contact',
  'consent_before_disclosure',
  'client_autonomy',
  'deadlines',
  'role',
  'step',
  'one_open_case',
  'invalid_input',
  'not_found',
]);

const POOL: Candidate[] = [
  { providerId: 'clin-7', name: 'Dr. Lee', external: false, contact: 'lee@agency.example' },
  { providerId: 'northside', name: 'Northside Counseling', external: true, contact: 'intake@northside.example' },
  { providerId: 'riverbend', name: 'Riverbend Clinic', external: true, contact: 'intake@riverbend.example' },
];

const POLICIES = [
  { outreachAttempts: 2, outreachSpacingDays: 0 },
  { outreachAttempts: 3, outreachSpacingDays: 2 },
];

const run = randomUUID().slice(0, 8);
const AGENCIES = POLICIES.map((_, i) => `model-${i}-${run}`);
const OTHER_AGENCY = `model-other-${run}`;

type ActorKey =
  | 'staff'
  | 'caseCounselor'
  | 'otherCounselor'
  | 'director'
  | 'director2'
  | 'reviewer'
  | 'compliance'
  | 'admin'
  | 'foreignStaff'
  | 'foreignDirector'
  | 'foreignCounselor';

function resolve(m: CaseModel, key: ActorKey): Who {
  const here = (id: string, role: Who['role']): Who => ({ id, role, agencyId: m.agencyId });
  const there = (id: string, role: Who['role']): Who => ({ id, role, agencyId: OTHER_AGENCY });
  switch (key) {
    case 'staff':
      return here('staff-1', 'staff');
    case 'caseCounselor':
      return m.counselor;
    case 'otherCounselor':
      return here(m.counselor.id === 'counselor-1' ? 'counselor-2' : 'counselor-1', 'counselor');
    case 'director':
      return here('director-1', 'clinical_director');
    case 'director2':
      return here('director-2', 'clinical_director');
    // A director who is not the case's counselor, whoever the record names.
    case 'reviewer':
      return here(m.counselor.id === 'director-1' ? 'director-2' : 'director-1', 'clinical_director');
    case 'compliance':
      return here('compliance-1', 'compliance');
    case 'admin':
      return here('admin-1', 'admin');
    // The same ids as ours, in another agency: the same id there names someone else.
    case 'foreignStaff':
      return there('staff-1', 'staff');
    case 'foreignDirector':
      return there('director-1', 'clinical_director');
    case 'foreignCounselor':
      return there('counselor-1', 'counselor');
  }
}

interface AdvanceParams {
  choice: Choice;
  candidate: number;
}

/** The next step of the happy path from where the model stands, by the person who would take it. */
function advance(m: CaseModel, p: AdvanceParams): { action: Action; actor: ActorKey } {
  if (m.status !== 'open') return { action: { kind: 'readLetter' }, actor: 'staff' };
  switch (m.step) {
    case 'decision_review':
      if (m.review === 'sent_back') return { action: { kind: 'revision' }, actor: 'caseCounselor' };
      if (atRisk(m.facts) && !planCovers(m)) return { action: { kind: 'safetyPlan' }, actor: 'caseCounselor' };
      return { action: { kind: 'review', decision: 'approve' }, actor: 'reviewer' };
    case 'client_conversation':
      return {
        action: { kind: 'conversation', heldOffset: 0, lastSessionOffset: 7, choice: p.choice },
        actor: 'caseCounselor',
      };
    case 'referral_handoff': {
      const current = currentReferral(m);
      if (!current)
        return { action: { kind: 'propose', candidates: [POOL[p.candidate % POOL.length]!] }, actor: 'staff' };
      const pick = m.referrals.indexOf(current);
      if (current.state === 'proposed') {
        const consent = {
          kind: 'consent',
          providerId: current.providerId,
          coversSud: true,
          expiresOffset: 180,
          signedOffset: 0,
        } as const;
        return { action: consent, actor: 'staff' };
      }
      if (current.state === 'sent')
        return { action: { kind: 'response', pick, response: 'accepted', withReason: false }, actor: 'staff' };
      return { action: { kind: 'appointment', pick }, actor: 'staff' };
    }
    case 'closure_letter':
      if (!planCovers(m)) return { action: { kind: 'safetyPlan' }, actor: 'caseCounselor' };
      if (!approvalCovers(m)) return { action: { kind: 'approvePlan' }, actor: 'reviewer' };
      // A client at risk with no accepting receiver: only a change to the record lets the case go on.
      return { action: { kind: 'record', record: { ...structuredClone(m.record), riskFlags: [] } }, actor: 'staff' };
    default: {
      const scheduled = m.referrals.findIndex((r) => r.state === 'first_appointment_scheduled');
      if (scheduled >= 0) return { action: { kind: 'outcome', pick: scheduled, outcome: 'kept' }, actor: 'staff' };
      return { action: { kind: 'engagement', engaged: true }, actor: 'caseCounselor' };
    }
  }
}

/** One request for an action: where it goes and what it carries (an unknown field when `malformed`). */
function requestFor(m: CaseModel, action: Action, malformed: boolean, today: string) {
  const base = `/v1/cases/${m.caseId}`;
  const referral = (pick: number) => pickReferral(m, pick)?.referralId ?? randomUUID();
  const post = (path: string, body: Record<string, unknown>) => ({
    method: 'POST',
    path: `${base}/${path}`,
    body: malformed ? { ...body, unexpected: 'field' } : body,
  });
  switch (action.kind) {
    case 'review':
      return post('review', { decision: action.decision, rationale: 'reviewed in a hostile sequence' });
    case 'revision':
      return post('revision', { rationale: 'revised as asked' });
    case 'riskFlag':
      return post('risk-flags', { flag: action.flag });
    case 'safetyPlan':
      return post('safety-plan', { documentRef: 'EHR safety plan, section 4' });
    case 'approvePlan':
      return post('safety-plan/approval', {});
    case 'conversation': {
      const heldOn = addDays(today, action.heldOffset);
      return post('conversation', {
        heldOn,
        clientChoice: action.choice,
        lastSessionDate: addDays(heldOn, action.lastSessionOffset),
      });
    }
    case 'outreach':
      return post('outreach-attempts', { attemptedOn: addDays(today, action.dayOffset), channel: action.channel });
    case 'waiver':
      return post('conversation/waiver', { basis: action.basis, rationale: 'documented in the record' });
    case 'propose':
      return post('referrals', { candidates: action.candidates });
    case 'response':
      return post(`referrals/${referral(action.pick)}/response`, {
        response: action.response,
        ...(action.response === 'declined'
          ? { declinedBy: 'provider', ...(action.withReason ? { declineReason: 'no capacity' } : {}) }
          : {}),
      });
    case 'appointment':
      return post(`referrals/${referral(action.pick)}/appointment`, { scheduledFor: `${addDays(today, 5)}T15:00:00Z` });
    case 'outcome':
      return post(`referrals/${referral(action.pick)}/appointment-outcome`, { outcome: action.outcome });
    case 'withdraw':
      return post(`referrals/${referral(action.pick)}/withdrawal`, { reason: 'no longer wanted' });
    case 'consent':
      return post('consents', {
        recipientProviderId: action.providerId,
        disclosed: 'treatment summary',
        purpose: 'continuity of care',
        expiresOn: addDays(today, action.expiresOffset),
        coversSubstanceUseRecords: action.coversSud,
        revocable: true,
        signedOn: addDays(today, action.signedOffset),
      });
    case 'revoke':
      return post(`consents/${pickConsent(m, action.pick)?.consentId ?? randomUUID()}/revocation`, {});
    case 'engagement':
      return post('engagement', { engaged: action.engaged });
    case 'cancel':
      return post('cancel', { reason: 'the move fell through' });
    case 'record': {
      const body = recordBody(action.record);
      return { method: 'PUT', path: `/v1/clients/${m.clientId}`, body: malformed ? { ...body, unexpected: 1 } : body };
    }
    case 'readLetter':
      return { method: 'GET', path: `${base}/letter`, body: undefined };
  }
}

function recordBody(record: ClientRecord) {
  return {
    name: 'Sam Rivera',
    counselorId: record.counselorId,
    active: true,
    riskFlags: record.riskFlags,
    contact: record.contact,
    hasSubstanceUseRecords: record.hasSubstanceUseRecords,
    needs: [],
  };
}

/** Deep equality by value, whatever realm or key order the objects come from (jsonb reorders keys). */
function same(a: unknown, b: unknown): boolean {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

const utcToday = () => new Date().toISOString().slice(0, 10);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a run did, for the report: commands, answers, refusals by rule, where cases ended. */
const stats = {
  sequences: 0,
  commands: 0,
  retries: 0,
  accepted: {} as Record<string, number>,
  refusals: {} as Record<string, number>,
  finalStatus: {} as Record<string, number>,
  furthestStep: {} as Record<string, number>,
  ms: 0,
};
const bump = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);

class Sequence {
  /** Refusals of case actions that name a rule: each must be in the audit trail. */
  ruleRefusals = 0;
  readonly log: string[] = [];
  furthest = 0;

  constructor(
    readonly stack: TestStack,
    readonly reader: Who,
  ) {}

  async perform(m: CaseModel, command: Command): Promise<void> {
    const today = utcToday();
    const chosen = command.advance ? advance(m, command.advance) : { action: command.action!, actor: command.actor };
    const action: Action =
      chosen.action.kind === 'record' && chosen.action.record.counselorId === KEEP
        ? { ...chosen.action, record: { ...chosen.action.record, counselorId: m.record.counselorId } }
        : chosen.action;
    const who = resolve(m, chosen.actor);
    const malformed = command.malformed && action.kind !== 'readLetter';
    const expected = expectOutcome(m, action, who, malformed, today);
    const request = requestFor(m, action, malformed, today);
    const before = await this.row(m.caseId);
    // A retry sends the same action again with the same Idempotency-Key, as a client whose answer was lost would.
    const retry = command.retry && request.method === 'POST' && action.kind !== 'record';
    const key = randomUUID();
    const send = () =>
      this.stack.request(request.method, request.path, {
        body: request.body,
        actor: { id: who.id, role: who.role, agencyId: who.agencyId },
        ...(retry ? { headers: { 'idempotency-key': key } } : {}),
      });
    const res: ApiResponse = await send();
    stats.commands++;
    const line = `${who.id}(${who.role}${who.agencyId === m.agencyId ? '' : ', other agency'}) ${action.kind} ${JSON.stringify(action)}${malformed ? ' malformed' : ''} -> ${res.status}${res.body?.rule ? ` ${res.body.rule}` : ''}`;
    this.log.push(line);
    const context = () => `\n${this.log.join('\n')}\nmodel: ${JSON.stringify(projectModel(m))}`;
    if (res.status >= 500) throw new Error(`a ${res.status}: ${JSON.stringify(res.body)}${context()}`);

    if (expected.accepted) {
      if (!expected.status.includes(res.status))
        throw new Error(
          `expected ${expected.status.join('/')}, got ${res.status} ${JSON.stringify(res.body)}${context()}`,
        );
      bump(stats.accepted, action.kind);
      apply(m, action, who, today);
      settle(m, today);
      await this.settled(m, context);
      if (retry) await this.retried(m, send, res, context);
    } else {
      this.checkProblem(res, context);
      const named = expected.allowed.some(
        (a) =>
          a.status === res.status && (a.rule === undefined ? res.body.rule === undefined : a.rule === res.body.rule),
      );
      if (!named)
        throw new Error(
          `expected one of ${JSON.stringify(expected.allowed)}, got ${res.status} ${JSON.stringify(res.body)}${context()}`,
        );
      bump(stats.refusals, `${res.status} ${res.body.rule ?? (res.body.type === 'about:blank' ? '-' : res.body.type)}`);
      if (res.body.rule && request.method === 'POST') this.ruleRefusals++;
      // Refused changes nothing: not the case, and not what it read from the record.
      const after = await this.row(m.caseId);
      if (after.state_version !== before.state_version)
        throw new Error(
          `a refusal changed the case (version ${before.state_version} → ${after.state_version})${context()}`,
        );
      await this.settled(m, context);
      if (retry) await this.retried(m, send, res, context);
    }
  }

  /** The same action again under its key: answered as before (or 409 once the case has ended), applied once. */
  async retried(m: CaseModel, send: () => Promise<ApiResponse>, first: ApiResponse, context: () => string) {
    const before = await this.row(m.caseId);
    const again = await send();
    stats.commands++;
    stats.retries++;
    this.log.push(
      `  retried with the same Idempotency-Key -> ${again.status}${again.body?.rule ? ` ${again.body.rule}` : ''}`,
    );
    const endedSince = first.status === 200 && again.status === 409 && m.status !== 'open';
    if (again.status !== first.status && !endedSince)
      throw new Error(
        `a retry answered ${again.status} ${JSON.stringify(again.body)}, first ${first.status}${context()}`,
      );
    if (again.status >= 400) {
      this.checkProblem(again, context);
      if (again.body.rule !== first.body?.rule && !endedSince)
        throw new Error(`a retry named ${again.body.rule}, the first answer ${first.body?.rule}${context()}`);
      // The retry is the first request again: its stored answer is replayed, and audited once (with the first).
    }

    const after = await this.row(m.caseId);
    if (after.state_version !== before.state_version) throw new Error(`a retry changed the case again${context()}`);
    await this.settled(m, context);
  }

  checkProblem(res: ApiResponse, context: () => string): void {
    const body = res.body;
    const ok =
      /application\/problem\+json/.test(res.headers.get('content-type') ?? '') &&
      typeof body === 'object' &&
      body.status === res.status &&
      typeof body.title === 'string' &&
      typeof body.detail === 'string' &&
      (body.rule !== undefined
        ? RULES.has(body.rule)
        : ['about:blank', '/problems/validation'].includes(body.type) && [400, 403, 404, 409].includes(res.status));
    if (!ok) throw new Error(`not a problem naming a rule: ${res.status} ${JSON.stringify(body)}${context()}`);
  }

  async row(caseId: string) {
    return this.stack.db
      .selectFrom('cases')
      .select(['status', 'step', 'state', 'state_version'])
      .where('case_id', '=', caseId)
      .executeTakeFirstOrThrow();
  }

  /** Waits until the read model shows what the model says, then reads the case through the API too. */
  async settled(m: CaseModel, context: () => string, timeoutMs = 20_000): Promise<void> {
    const want = projectModel(m);
    const deadline = Date.now() + timeoutMs;
    let got: Projection | undefined;
    let state: any;
    for (;;) {
      const row = await this.row(m.caseId);
      state = row.state;
      got = row.state ? projectService(row.status, row.step, row.state) : undefined;
      if (same(got, want)) break;
      if (Date.now() > deadline)
        throw new Error(
          `the case is not where the model says\nwant ${JSON.stringify(want)}\ngot  ${JSON.stringify(got)}${context()}`,
        );
      await sleep(40);
    }
    m.referrals.forEach((r, i) => (r.referralId ??= state.referrals[i].referralId));
    m.consents.forEach((c, i) => (c.consentId ??= state.consents[i].consentId));
    const steps = ['decision_review', 'client_conversation', 'referral_handoff', 'closure_letter', 'follow_up', 'done'];
    this.furthest = Math.max(this.furthest, steps.indexOf(m.step === 'done' && m.status !== 'closed' ? '' : m.step));

    const view = await this.stack.request('GET', `/v1/cases/${m.caseId}`, { actor: this.reader });
    const seen = view.status === 200 ? projectService(view.body.status, view.body.step, view.body.process) : view.body;
    if (!same(seen, want))
      throw new Error(
        `GET /v1/cases/:id differs from the model\nwant ${JSON.stringify(want)}\ngot  ${JSON.stringify(seen)}${context()}`,
      );
    // What holds the case names the rule that holds it.
    const blockers = new Set<string>((view.body.blockers ?? []).map((b: { rule: string }) => b.rule));
    const held: string[] = [];
    if (m.status === 'open') {
      if (!m.conversation.heldOn && !m.conversation.precludedBy) held.push('no_abandonment');
      if (atRisk(m.facts) && !(planCovers(m) && approvalCovers(m))) held.push('risk_first');
      const current = currentReferral(m);
      if (
        m.step === 'referral_handoff' &&
        current?.state === 'proposed' &&
        current.external &&
        !releaseFor(m, current.providerId, utcToday())
      )
        held.push('consent_before_disclosure');
    }
    const missing = held.filter((r) => !blockers.has(r));
    if (missing.length)
      throw new Error(`blockers do not name ${missing.join(', ')}: ${JSON.stringify(view.body.blockers)}${context()}`);
  }
}

class Command implements fc.AsyncCommand<CaseModel, Sequence> {
  constructor(
    readonly action: Action | null,
    readonly actor: ActorKey,
    readonly malformed: boolean,
    readonly advance: AdvanceParams | null = null,
    readonly retry = false,
  ) {}
  check(): boolean {
    // Hostile: every command is sent whatever the state; the model says what the answer must be.
    return true;
  }
  run(m: CaseModel, r: Sequence): Promise<void> {
    return r.perform(m, this);
  }
  toString(): string {
    return this.advance
      ? `advance(${JSON.stringify(this.advance)})`
      : `${this.actor}:${JSON.stringify(this.action)}${this.malformed ? ':malformed' : ''}${this.retry ? ':retried' : ''}`;
  }
}

// ---- what a sequence is made of --------------------------------------------------------------------------

const weighted = <T>(...items: [number, fc.Arbitrary<T>][]) =>
  fc.oneof(...items.map(([weight, arbitrary]) => ({ weight, arbitrary })));

const contactArb = fc.record({
  channels: fc.uniqueArray(
    fc.record({
      channel: fc.constantFrom<Channel>('portal', 'phone', 'email', 'mail', 'in_person'),
      safe: fc.boolean(),
    }),
    { selector: (c) => c.channel, maxLength: 4 },
  ),
  noContactAtHome: weighted([3, fc.constant(false)], [1, fc.constant(true)]),
  email: fc.option(fc.constant('sam.rivera@client.example'), { nil: null, freq: 4 }),
  postalAddress: fc.option(fc.constant('12 Elm Street, Springfield'), { nil: null, freq: 3 }),
});

/** `=` keeps the counselor the record names now; now and then the record names another clinician. */
const KEEP = '=';
const recordArb = (counselorId: fc.Arbitrary<string>): fc.Arbitrary<ClientRecord> =>
  fc.record({
    counselorId,
    riskFlags: weighted([3, fc.constant([])], [1, fc.subarray([...FLAGS], { minLength: 1 })]),
    contact: contactArb,
    hasSubstanceUseRecords: weighted([3, fc.constant(false)], [1, fc.constant(true)]),
  });

const actorArb: fc.Arbitrary<ActorKey> = weighted(
  [3, fc.constant('director' as const)],
  [3, fc.constant('caseCounselor' as const)],
  [3, fc.constant('staff' as const)],
  [1, fc.constant('director2' as const)],
  [1, fc.constant('otherCounselor' as const)],
  [1, fc.constant('compliance' as const)],
  [1, fc.constant('admin' as const)],
  [1, fc.constantFrom('foreignStaff' as const, 'foreignDirector' as const, 'foreignCounselor' as const)],
);
const pickArb = weighted([6, fc.nat(5)], [1, fc.constant(-1)]);
const providerArb = fc.constantFrom('northside', 'riverbend', 'elsewhere');

const actionArb: fc.Arbitrary<Action> = weighted<Action>(
  [
    3,
    fc.record({ kind: fc.constant('review'), decision: fc.constantFrom('approve', 'approve', 'send_back', 'reject') }),
  ],
  [1, fc.record({ kind: fc.constant('revision') })],
  [1, fc.record({ kind: fc.constant('riskFlag'), flag: fc.constantFrom(...FLAGS) })],
  [1, fc.record({ kind: fc.constant('safetyPlan') })],
  [1, fc.record({ kind: fc.constant('approvePlan') })],
  [
    2,
    fc.record({
      kind: fc.constant('conversation'),
      heldOffset: fc.constantFrom(0, 0, -2, 1),
      lastSessionOffset: fc.constantFrom(7, 0, -1),
      choice: fc.constantFrom<Choice>('accept_proposed', 'choose_own', 'decline_services'),
    }),
  ],
  [
    2,
    fc.record({
      kind: fc.constant('outreach'),
      dayOffset: fc.constantFrom(0, 0, 0, -1, 1),
      channel: fc.constantFrom<Channel>('portal', 'phone', 'email', 'mail', 'in_person'),
    }),
  ],
  [1, fc.record({ kind: fc.constant('waiver'), basis: fc.constantFrom('client_initiated', 'clinician_safety') })],
  [2, fc.record({ kind: fc.constant('propose'), candidates: fc.subarray(POOL, { minLength: 1, maxLength: 2 }) })],
  [
    2,
    fc.record({
      kind: fc.constant('response'),
      pick: pickArb,
      response: fc.constantFrom('accepted', 'declined'),
      withReason: weighted([4, fc.constant(true)], [1, fc.constant(false)]),
    }),
  ],
  [1, fc.record({ kind: fc.constant('appointment'), pick: pickArb })],
  [1, fc.record({ kind: fc.constant('outcome'), pick: pickArb, outcome: fc.constantFrom('kept', 'no_show') })],
  [1, fc.record({ kind: fc.constant('withdraw'), pick: pickArb })],
  [
    2,
    fc.record({
      kind: fc.constant('consent'),
      providerId: providerArb,
      coversSud: fc.boolean(),
      expiresOffset: fc.constantFrom(180, 180, 0, -1),
      signedOffset: fc.constantFrom(0, 0, -10, 1),
    }),
  ],
  [1, fc.record({ kind: fc.constant('revoke'), pick: pickArb })],
  [1, fc.record({ kind: fc.constant('engagement'), engaged: fc.boolean() })],
  [1, fc.record({ kind: fc.constant('cancel') })],
  [
    2,
    fc.record({
      kind: fc.constant('record'),
      record: recordArb(
        weighted(
          [8, fc.constant(KEEP)],
          [1, fc.constantFrom('counselor-1', 'counselor-2', 'director-1', 'director-2')],
        ),
      ),
    }),
  ],
  [1, fc.record({ kind: fc.constant('readLetter') })],
);
const malformedArb = weighted([15, fc.constant(false)], [1, fc.constant(true)]);

const hostileArb = fc
  .tuple(actionArb, actorArb, malformedArb, weighted([7, fc.constant(false)], [1, fc.constant(true)]))
  .map(([action, actor, malformed, retry]) => new Command(action, actor, malformed, null, retry));
const commandArbs = [
  hostileArb,
  hostileArb,
  hostileArb,
  // Two commands in five take the next step of the happy path, so sequences reach the handoff, the letter, closing.
  fc
    .record({
      choice: fc.constantFrom<Choice>('accept_proposed', 'accept_proposed', 'choose_own', 'decline_services'),
      candidate: fc.nat(2),
    })
    .map((advanceParams) => new Command(null, 'staff', false, advanceParams)),
  fc
    .record({
      choice: fc.constantFrom<Choice>('accept_proposed', 'choose_own'),
      candidate: fc.nat(2),
    })
    .map((advanceParams) => new Command(null, 'staff', false, advanceParams)),
];

const caseArb = fc.record({
  policy: fc.nat(POLICIES.length - 1),
  reason: fc.constantFrom<Reason>(
    'counselor_relocation',
    'counselor_relocation',
    'client_request',
    'clinician_safety',
    'financial',
    'outside_scope',
    'client_stopped_attending',
  ),
  record: recordArb(weighted([4, fc.constant('counselor-1')], [1, fc.constant('director-2')])),
  proposed: weighted([3, fc.constant([] as Candidate[])], [1, fc.subarray(POOL, { minLength: 1, maxLength: 2 })]),
});
type CaseConfig = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

// ---- the stack ---------------------------------------------------------------------------------------------

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
  for (const [i, agencyId] of AGENCIES.entries()) {
    const res = await stack.request('PUT', `/v1/agencies/${agencyId}/policy`, {
      actor: { id: 'admin-1', role: 'admin', agencyId },
      body: { agencyName: 'Model Counseling', agencyPhone: '555-0100', policy: { ...POLICIES[i], timeZone: 'UTC' } },
    });
    if (res.status !== 200) throw new Error(`policy: ${res.status} ${JSON.stringify(res.body)}`);
  }
});
afterAll(async () => {
  await stack?.close();
});

async function openCase(config: CaseConfig, sequence: Sequence): Promise<CaseModel> {
  const agencyId = AGENCIES[config.policy]!;
  const clientId = `client-${randomUUID().slice(0, 8)}`;
  const staff = { id: 'staff-1', role: 'staff' as const, agencyId };
  const put = await stack.request('PUT', `/v1/clients/${clientId}`, {
    actor: staff,
    body: recordBody(config.record),
  });
  if (put.status !== 201) throw new Error(`client: ${put.status} ${JSON.stringify(put.body)}`);
  const relocation = config.reason === 'counselor_relocation';
  const start = await stack.request('POST', '/v1/cases', {
    actor: staff,
    body: {
      clientId,
      kind: relocation ? 'transfer' : config.reason === 'outside_scope' ? 'referral' : 'termination',
      reason: config.reason,
      ...(relocation ? { lastDay: addDays(utcToday(), 45) } : {}),
      ...(config.proposed.length ? { proposedReceivers: config.proposed } : {}),
    },
  });
  if (start.status !== 202) throw new Error(`start: ${start.status} ${JSON.stringify(start.body)}`);
  const caseId = start.headers.get('location')!.split('/').pop()!;
  let row = await sequence.row(caseId);
  // Open, and done recording the receivers that came with the start: nothing more moves by itself.
  const opened = () =>
    row.status === 'open' && row.state?.openedOn && row.state_version >= (config.proposed.length ? 1 : 0);
  for (const deadline = Date.now() + 20_000; !opened();) {
    if (Date.now() > deadline) throw new Error(`case ${caseId} never opened`);
    await sleep(40);
    row = await sequence.row(caseId);
  }
  const model = newModel({
    caseId,
    agencyId,
    clientId,
    reason: config.reason,
    policy: POLICIES[config.policy]!,
    openedOn: row.state!.openedOn!,
    record: config.record,
    proposed: config.proposed,
  });
  sequence.log.push(`case ${caseId} ${JSON.stringify(config)}`);
  await sequence.settled(model, () => `\n${sequence.log.join('\n')}`);
  return model;
}

// ---- the rules, in the database and the audit trail --------------------------------------------------------

interface RecordVersion {
  fromSeq: number;
  facts: {
    counselorId: string;
    riskFlags: string[];
    contact: ClientRecord['contact'];
    hasSubstanceUseRecords: boolean;
  };
}

/**
 * The client record as it stood at each point of the audit trail, rebuilt from the trail alone (each change
 * records the facts before it) and the record as it stands now.
 */
async function recordHistory(m: CaseModel): Promise<RecordVersion[]> {
  const events = await stack.db
    .selectFrom('audit_events')
    .select(['seq', 'action', 'before'])
    .where('agency_id', '=', m.agencyId)
    .where('client_id', '=', m.clientId)
    .where('action', 'in', ['client.inserted', 'client.updated', 'client.risk_flag_raised'])
    .where('outcome', '=', 'done')
    .orderBy('seq')
    .execute();
  const row = await stack.db
    .selectFrom('clients')
    .selectAll()
    .where('agency_id', '=', m.agencyId)
    .where('client_id', '=', m.clientId)
    .executeTakeFirstOrThrow();
  let current: RecordVersion['facts'] = {
    counselorId: row.counselor_id,
    riskFlags: row.risk_flags,
    contact: row.contact as ClientRecord['contact'],
    hasSubstanceUseRecords: row.has_sud_records,
  };
  const versions: RecordVersion[] = [];
  for (const event of [...events].reverse()) {
    versions.unshift({ fromSeq: Number(event.seq), facts: current });
    const before = event.before as any;
    if (event.action === 'client.updated') current = before;
    else if (event.action === 'client.risk_flag_raised') current = { ...current, riskFlags: before.riskFlags };
  }
  return versions;
}

function recordAt(versions: RecordVersion[], seq: number): RecordVersion['facts'] {
  const version = versions.filter((v) => v.fromSeq < seq).at(-1);
  if (!version) throw new Error(`no client record before audit event ${seq}`);
  return version.facts;
}

/** The seq of the latest change that added a risk flag, at or before `seq` (0 if the flags came with the record). */
function latestFlagAdded(versions: RecordVersion[], seq: number): number {
  let added = 0;
  let previous: string[] = [];
  for (const v of versions) {
    if (v.fromSeq >= seq) break;
    if (v.facts.riskFlags.some((f) => !previous.includes(f))) added = v.fromSeq;
    previous = v.facts.riskFlags;
  }
  return added;
}

async function checkRules(m: CaseModel, sequence: Sequence): Promise<void> {
  const fail = (what: string) => {
    throw new Error(`${what}\n${sequence.log.join('\n')}`);
  };
  const db = stack.db;
  const { caseId } = m;
  const events = (
    await db
      .selectFrom('audit_events')
      .select(['seq', 'action', 'event_key', 'outcome', 'agency_id', 'actor_id', 'after'])
      .where('case_id', '=', caseId)
      .orderBy('seq')
      .execute()
  ).map((e) => ({ ...e, seq: Number(e.seq) }));
  const done = (action: string) => events.filter((e) => e.action === action && e.outcome === 'done');
  const versions = await recordHistory(m);
  const row = await db.selectFrom('cases').selectAll().where('case_id', '=', caseId).executeTakeFirstOrThrow();

  // Another agency's actor never changes anything: every event of the case is our agency's, and our client record
  // is the one our side wrote.
  if (events.some((e) => e.agency_id !== m.agencyId)) fail('an event of this case is in another agency’s trail');
  const record = versions.at(-1)!.facts;
  if (!same(record, m.record)) fail(`the client record is not what this agency wrote: ${JSON.stringify(record)}`);

  // Separation of duties: the counselor the record names never approves, waives or approves the plan of their case.
  for (const e of events) {
    const decides = ['decision.approved', 'risk.safety_plan_approved', 'conversation.precluded'].includes(e.action);
    if (decides && e.actor_id !== 'system' && e.actor_id === recordAt(versions, e.seq).counselorId)
      fail(`${e.actor_id}, the client's counselor, did ${e.action}`);
  }

  // No abandonment: no closed case without the conversation held or documented as precluded.
  if (row.status === 'closed' && !done('conversation.held').length && !done('conversation.precluded').length)
    fail('a case closed without the conversation held or precluded');

  // Safe contact, and risk first, at the moment the letter was issued (on the record as it stood then).
  const letters = await db
    .selectFrom('letters')
    .select(['channel', 'delivery'])
    .where('case_id', '=', caseId)
    .execute();
  const generated = done('letter.generated');
  if (letters.length !== generated.length || letters.length > 1) fail('letters and letter.generated events disagree');
  if (letters[0]) {
    const letterSeq = generated[0]!.seq;
    const facts = recordAt(versions, letterSeq) as ClientRecord;
    const channel = letters[0].channel;
    if (channel) {
      if (channel !== 'email' && channel !== 'mail') fail(`a letter by ${channel}`);
      if (!channelAllowed(facts, channel)) fail(`a letter by ${channel}, which the record marks unsafe`);
      if (channel === 'email' ? !facts.contact.email : !facts.contact.postalAddress)
        fail(`a letter by ${channel} with no address on record`);
    } else if (letters[0].delivery !== 'held_for_in_person') fail('a letter with no channel that is not held');
    const outbox = await db
      .selectFrom('outbox')
      .select('channel')
      .where('case_id', '=', caseId)
      .where('kind', '=', 'closure_letter')
      .execute();
    if (outbox.length !== (channel ? 1 : 0) || (channel && outbox[0]!.channel !== channel))
      fail(`the letter's outbox rows ${JSON.stringify(outbox)} do not match its channel ${channel}`);
    if (facts.riskFlags.length) {
      const flagged = latestFlagAdded(versions, letterSeq);
      const between = (action: string, from: number) => done(action).filter((e) => e.seq > from && e.seq < letterSeq);
      const plans = between('risk.safety_plan_documented', flagged);
      const approvals = [...between('risk.safety_plan_approved', flagged), ...between('decision.approved', flagged)];
      if (!plans.length || !approvals.some((a) => a.seq > plans[0]!.seq))
        fail('a letter to a client at risk without a safety plan and its approval after the latest flag');
      if (!done('referral.accepted').some((e) => e.seq < letterSeq))
        fail('a letter to a client at risk before a receiver accepted');
    }
  }
  if (['closed'].includes(row.status) && !letters.length) fail('a closed case without a letter');

  // Consent before disclosure: every disclosure under a live, unexpired release naming that receiver, covering
  // Part 2 records when the record held them at that moment; every outside send is a disclosure.
  const disclosures = await db.selectFrom('disclosures').selectAll().where('case_id', '=', caseId).execute();
  for (const d of disclosures) {
    const consent = await db
      .selectFrom('consents')
      .selectAll()
      .where('consent_id', '=', d.consent_id)
      .executeTakeFirst();
    if (!consent || consent.case_id !== caseId) fail(`disclosure ${d.disclosure_id} under no release of this case`);
    if (consent!.recipient_provider_id !== d.recipient_provider_id)
      fail(`a disclosure to ${d.recipient_provider_id} under a release naming ${consent!.recipient_provider_id}`);
    if (consent!.revoked_at && consent!.revoked_at < d.disclosed_at) fail('a disclosure under a revoked release');
    if (consent!.expires_on < d.disclosed_at.toISOString().slice(0, 10)) fail('a disclosure under an expired release');
    const event = events.find((e) => e.event_key === `${d.disclosure_id}:disclosure`);
    if (!event) fail(`disclosure ${d.disclosure_id} is not in the audit trail`);
    if (recordAt(versions, event!.seq).hasSubstanceUseRecords) {
      if (!consent!.covers_sud_records) fail('Part 2 records disclosed under a release that does not cover them');
      if (!d.substance_use_records || !d.redisclosure_notice) fail('a Part 2 disclosure without its notice');
    }
  }
  const referrals = await db.selectFrom('referrals').selectAll().where('case_id', '=', caseId).execute();
  for (const r of referrals) {
    const wasSent = (r.history as { state: string }[]).some((h) => h.state === 'sent');
    const disclosed = disclosures.filter((d) => d.disclosure_id === `${caseId}:${r.referral_id}:sent`);
    if (r.external && wasSent && disclosed.length !== 1) fail(`referral to ${r.provider_id} sent without a disclosure`);
    if (!r.external && disclosed.length) fail(`an internal referral to ${r.provider_id} disclosed outside`);
  }
  const notices = await db
    .selectFrom('outbox')
    .select('message_key')
    .where('case_id', '=', caseId)
    .where('kind', '=', 'referral')
    .where('channel', '=', 'provider_direct')
    .execute();
  for (const n of notices)
    if (!disclosures.some((d) => d.disclosure_id === n.message_key)) fail(`a referral notice with no disclosure`);

  // The read model's referral rows agree with the case.
  const byId = new Map(referrals.map((r) => [r.referral_id, r.state]));
  for (const r of m.referrals)
    if (byId.get(r.referralId!) !== r.state) fail(`referral row ${r.referralId} is ${byId.get(r.referralId!)}`);

  // Every refusal that named a rule is in the trail.
  const refused = events.filter((e) => e.outcome === 'refused' && e.action.startsWith('action.')).length;
  if (refused !== sequence.ruleRefusals)
    fail(`${sequence.ruleRefusals} refusals named a rule, ${refused} are in the audit trail`);
}

// ---- the run ----------------------------------------------------------------------------------------------

async function lane(index: number, runs: number): Promise<void> {
  const reader: Who = { id: `reader-${index}`, role: 'compliance', agencyId: '' };
  await fc.assert(
    fc.asyncProperty(
      caseArb,
      fc.commands(commandArbs, { maxCommands: MAX_COMMANDS, size: 'max' }),
      async (config, commands) => {
        let sequence: Sequence | undefined;
        let model: CaseModel | undefined;
        await fc.asyncModelRun(async () => {
          const agencyId = AGENCIES[config.policy]!;
          sequence = new Sequence(stack, { ...reader, agencyId });
          model = await openCase(config, sequence);
          return { model, real: sequence };
        }, commands);
        // Nothing moves once the sequence is over: the case stays where the model says.
        await sleep(200);
        await sequence!.settled(model!, () => `\n${sequence!.log.join('\n')}`);
        await checkRules(model!, sequence!);
        stats.sequences++;
        bump(stats.finalStatus, `${model!.status}/${model!.step}`);
        bump(stats.furthestStep, String(sequence!.furthest));
      },
    ),
    { numRuns: runs, seed: SEED + index, endOnFailure: process.env.MODEL_SHRINK !== '1' },
  );
}

test(
  `when random people send random actions in random order, then every answer and every case follow the rules (${SEQUENCES} sequences)`,
  async () => {
    const started = Date.now();
    const share = (i: number) => Math.floor(SEQUENCES / LANES) + (i < SEQUENCES % LANES ? 1 : 0);
    try {
      await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i, share(i))));
    } finally {
      stats.ms = Date.now() - started;
      mkdirSync(TEST_DIR, { recursive: true });
      writeFileSync(
        join(TEST_DIR, 'hostile-sequences.json'),
        JSON.stringify({ seed: SEED, lanes: LANES, ...stats }, null, 2),
      );
      if (process.env.MODEL_SEQUENCES)
        process.stdout.write(`hostile sequences (seed ${SEED}): ${JSON.stringify(stats)}\n`);
    }
    expect(stats.sequences).toBe(SEQUENCES);
    // The run reached every part of the process, not only its first step.
    expect(stats.commands).toBeGreaterThan(SEQUENCES);
  },
  Math.max(10 * 60_000, SEQUENCES * 20_000),
);
