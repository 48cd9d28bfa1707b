/**
 * A model of one case, written from DOMAIN.md and the README's tables, not from the workflow's code: who may do
 * what, which rule says no, and where the case stands once the process has moved on by itself. The hostile-sequence
 * test drives the real service and this model side by side and holds one to the other.
 */

export const FLAGS = ['suicide_risk', 'domestic_violence', 'recent_relapse'] as const;
export type Flag = (typeof FLAGS)[number];
export const CHANNELS = ['portal', 'phone', 'email', 'mail', 'in_person'] as const;
export type Channel = (typeof CHANNELS)[number];
export type Role = 'staff' | 'counselor' | 'clinical_director' | 'compliance' | 'admin';
export type Choice = 'accept_proposed' | 'choose_own' | 'decline_services';
export type Reason =
  | 'counselor_relocation'
  | 'client_request'
  | 'clinician_safety'
  | 'financial'
  | 'outside_scope'
  | 'client_stopped_attending';
type RefState =
  | 'proposed'
  | 'sent'
  | 'accepted'
  | 'declined'
  | 'expired'
  | 'first_appointment_scheduled'
  | 'first_appointment_kept'
  | 'no_show'
  | 're_routed'
  | 'withdrawn';

export interface Contact {
  channels: { channel: Channel; safe: boolean }[];
  noContactAtHome: boolean;
  email: string | null;
  postalAddress: string | null;
}

/** The safety facts of the agency's client record: the only source of them. */
export interface ClientRecord {
  counselorId: string;
  riskFlags: Flag[];
  contact: Contact;
  hasSubstanceUseRecords: boolean;
}

export interface Who {
  id: string;
  role: Role;
  agencyId: string;
}

/** The clinicians a client record may name: counselors, and directors who carry a caseload too. */
export function clinician(id: string, agencyId: string): Who {
  return { id, role: id.startsWith('director') ? 'clinical_director' : 'counselor', agencyId };
}

export interface Candidate {
  providerId: string;
  name: string;
  external: boolean;
  contact: string;
}

export interface ModelReferral {
  referralId: string | null;
  providerId: string;
  external: boolean;
  state: RefState;
}

export interface ModelConsent {
  consentId: string | null;
  providerId: string;
  coversSud: boolean;
  expiresOn: string;
  revoked: boolean;
}

export interface CaseModel {
  caseId: string;
  agencyId: string;
  clientId: string;
  counselor: Who;
  reason: Reason;
  policy: { outreachAttempts: number; outreachSpacingDays: number };
  openedOn: string;
  /** The agency's record, and what the (open) case has read from it. */
  record: ClientRecord;
  facts: ClientRecord;
  status: 'open' | 'closed' | 'cancelled' | 'rejected';
  step: 'decision_review' | 'client_conversation' | 'referral_handoff' | 'closure_letter' | 'follow_up' | 'done';
  review: 'awaiting_review' | 'sent_back' | 'approved' | 'rejected';
  /** Risk first as a logical clock: a plan and an approval count only when they come after the latest new flag. */
  clock: number;
  lastFlagAt: number;
  planAt: number;
  approvedAt: number;
  conversation: { heldOn: string | null; choice: Choice | null; precludedBy: string | null; outreach: string[] };
  queue: Candidate[];
  referrals: ModelReferral[];
  consents: ModelConsent[];
  letter: { delivery: 'queued' | 'held_for_in_person'; channel: Channel | null } | null;
  engaged: boolean;
  /** Escalations to a director, by kind, and how often a referral was re-routed (the policy allows 2). */
  escalations: string[];
  reroutes: number;
}

/** `pick` chooses an existing referral or consent by position; a negative one names an id the case never had. */
export type Action =
  | { kind: 'review'; decision: 'approve' | 'reject' | 'send_back' }
  | { kind: 'revision' }
  | { kind: 'riskFlag'; flag: Flag }
  | { kind: 'safetyPlan' }
  | { kind: 'approvePlan' }
  | { kind: 'conversation'; heldOffset: number; lastSessionOffset: number; choice: Choice }
  | { kind: 'outreach'; dayOffset: number; channel: Channel }
  | { kind: 'waiver'; basis: 'client_initiated' | 'clinician_safety' }
  | { kind: 'propose'; candidates: Candidate[] }
  | { kind: 'response'; pick: number; response: 'accepted' | 'declined'; withReason: boolean }
  | { kind: 'appointment'; pick: number }
  | { kind: 'outcome'; pick: number; outcome: 'kept' | 'no_show' }
  | { kind: 'withdraw'; pick: number }
  | { kind: 'consent'; providerId: string; coversSud: boolean; expiresOffset: number; signedOffset: number }
  | { kind: 'revoke'; pick: number }
  | { kind: 'engagement'; engaged: boolean }
  | { kind: 'cancel' }
  | { kind: 'record'; record: ClientRecord }
  | { kind: 'readLetter' };
export type ActionKind = Action['kind'];

/** A refusal the service may answer with: its status and, for a rule of the process, the rule's name. */
export interface Refusal {
  status: number;
  rule?: string;
}
export type Expected = { accepted: true; status: number[] } | { accepted: false; allowed: Refusal[] };

const CARE_TEAM: Role[] = ['staff', 'counselor', 'clinical_director'];
const COUNSELOR_DIRECTOR: Role[] = ['counselor', 'clinical_director'];
const STAFF_DIRECTOR: Role[] = ['staff', 'clinical_director'];
const DIRECTOR: Role[] = ['clinical_director'];

/** The README's role table, for the actions this model knows. */
export const MAY: Record<ActionKind, Role[]> = {
  review: DIRECTOR,
  revision: COUNSELOR_DIRECTOR,
  riskFlag: CARE_TEAM,
  safetyPlan: COUNSELOR_DIRECTOR,
  approvePlan: DIRECTOR,
  conversation: COUNSELOR_DIRECTOR,
  outreach: COUNSELOR_DIRECTOR,
  waiver: DIRECTOR,
  propose: CARE_TEAM,
  response: CARE_TEAM,
  appointment: CARE_TEAM,
  outcome: CARE_TEAM,
  withdraw: STAFF_DIRECTOR,
  consent: CARE_TEAM,
  revoke: CARE_TEAM,
  engagement: COUNSELOR_DIRECTOR,
  cancel: STAFF_DIRECTOR,
  record: ['staff', 'clinical_director', 'admin'],
  readLetter: ['staff', 'counselor', 'clinical_director', 'compliance'],
};

export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

function daysApart(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

export function atRisk(facts: ClientRecord): boolean {
  return facts.riskFlags.length > 0;
}

/** Safe contact: a domestic-violence flag or "no contact at home" restricts contact to confirmed safe channels. */
export function restricted(record: ClientRecord): boolean {
  return record.riskFlags.includes('domestic_violence') || record.contact.noContactAtHome;
}

export function channelAllowed(record: ClientRecord, channel: Channel): boolean {
  if (channel === 'in_person' || !restricted(record)) return true;
  return record.contact.channels.some((c) => c.channel === channel && c.safe);
}

/** A letter goes by email or mail, to an address on record, by a channel safe contact allows, in the client's order. */
export function letterChannel(record: ClientRecord): Channel | null {
  const carries = (c: Channel) =>
    (c === 'email' && !!record.contact.email) || (c === 'mail' && !!record.contact.postalAddress);
  const usable = record.contact.channels.filter((c) => carries(c.channel));
  const chosen = restricted(record) ? usable.find((c) => c.safe) : usable[0];
  return chosen?.channel ?? null;
}

const ACCEPTED_FAMILY: RefState[] = ['accepted', 'first_appointment_scheduled', 'first_appointment_kept', 'no_show'];

export function acceptedReferral(m: CaseModel): ModelReferral | undefined {
  return m.referrals.find((r) => ACCEPTED_FAMILY.includes(r.state));
}

/** The referral in play: one waiting to go out or for an answer, else the one accepted. */
export function currentReferral(m: CaseModel): ModelReferral | undefined {
  return m.referrals.find((r) => r.state === 'proposed' || r.state === 'sent') ?? acceptedReferral(m);
}

export function planCovers(m: CaseModel): boolean {
  return m.planAt > m.lastFlagAt;
}
export function approvalCovers(m: CaseModel): boolean {
  return m.approvedAt > m.lastFlagAt;
}

/** Consent before disclosure: a live, unexpired release naming the receiver, covering Part 2 records if there are any. */
export function releaseFor(m: CaseModel, providerId: string, today: string): ModelConsent | undefined {
  return m.consents.find(
    (c) =>
      c.providerId === providerId &&
      !c.revoked &&
      c.expiresOn >= today &&
      (!m.facts.hasSubstanceUseRecords || c.coversSud),
  );
}

function mayClose(m: CaseModel): boolean {
  if (!atRisk(m.facts)) return true;
  return planCovers(m) && approvalCovers(m) && acceptedReferral(m) !== undefined;
}

function tick(m: CaseModel): number {
  return ++m.clock;
}

export function newModel(init: {
  caseId: string;
  agencyId: string;
  clientId: string;
  reason: Reason;
  policy: CaseModel['policy'];
  openedOn: string;
  record: ClientRecord;
  proposed: Candidate[];
}): CaseModel {
  return {
    ...init,
    counselor: clinician(init.record.counselorId, init.agencyId),
    record: structuredClone(init.record),
    facts: structuredClone(init.record),
    status: 'open',
    step: 'decision_review',
    review: 'awaiting_review',
    clock: 1,
    lastFlagAt: init.record.riskFlags.length ? 1 : 0,
    planAt: -1,
    approvedAt: -1,
    conversation: { heldOn: null, choice: null, precludedBy: null, outreach: [] },
    queue: [...init.proposed],
    referrals: [],
    consents: [],
    letter: null,
    engaged: false,
    escalations: [],
    reroutes: 0,
  };
}

export function pickReferral(m: CaseModel, pick: number): ModelReferral | undefined {
  if (pick < 0 || m.referrals.length === 0) return undefined;
  return m.referrals[pick % m.referrals.length];
}
export function pickConsent(m: CaseModel, pick: number): ModelConsent | undefined {
  if (pick < 0 || m.consents.length === 0) return undefined;
  return m.consents[pick % m.consents.length];
}

const step = (): Refusal => ({ status: 409, rule: 'step' });
const invalid = (): Refusal => ({ status: 400, rule: 'invalid_input' });
const notFound = (): Refusal => ({ status: 404, rule: 'not_found' });
const rule = (name: string): Refusal => ({ status: 422, rule: name });

/**
 * What the service must answer to `action` by `who` now. Access comes first (the role matrix, then the case
 * being out of the caller's sight), then the request's shape, then whether the case is still open; after that
 * every rule that says no is listed, and the service may name any one of them.
 */
export function expectOutcome(m: CaseModel, action: Action, who: Who, malformed: boolean, today: string): Expected {
  const refuse = (...allowed: Refusal[]): Expected => ({ accepted: false, allowed });
  if (!MAY[action.kind].includes(who.role)) return refuse({ status: 403 });
  if (action.kind === 'record') {
    if (malformed) return refuse({ status: 400 });
    // Another agency's write names its own client, whatever the id: created there, never ours.
    return { accepted: true, status: who.agencyId === m.agencyId ? [200] : [200, 201] };
  }
  const inSight = who.agencyId === m.agencyId && (who.role !== 'counselor' || who.id === m.counselor.id);
  if (!inSight) return refuse({ status: 404 });
  if (action.kind === 'readLetter') return m.letter ? { accepted: true, status: [200] } : refuse({ status: 404 });
  if (malformed) return refuse({ status: 400 });
  // The API sees the ended case in its read model; the case itself names the step.
  if (m.status !== 'open') return refuse({ status: 409 }, step());

  const no: Refusal[] = [];
  const isCounselor = who.id === m.counselor.id;
  const atStep = (s: CaseModel['step']) => {
    if (m.step !== s) no.push(step());
  };
  switch (action.kind) {
    case 'review':
      atStep('decision_review');
      if (m.review === 'sent_back') no.push(step());
      if (isCounselor) no.push(rule('separation_of_duties'));
      if (action.decision === 'approve') {
        if (atRisk(m.facts) && !planCovers(m)) no.push(rule('risk_first'));
        if (m.reason === 'financial' && m.facts.riskFlags.includes('suicide_risk')) no.push(rule('no_abandonment'));
      }
      break;
    case 'revision':
      atStep('decision_review');
      if (m.review !== 'sent_back') no.push(step());
      break;
    case 'approvePlan':
      if (isCounselor) no.push(rule('separation_of_duties'));
      if (!atRisk(m.facts)) no.push(step());
      else if (!planCovers(m)) no.push(rule('risk_first'));
      break;
    case 'conversation': {
      atStep('client_conversation');
      const heldOn = addDays(today, action.heldOffset);
      if (heldOn > today) no.push(invalid());
      if (action.lastSessionOffset < 0) no.push(invalid());
      break;
    }
    case 'outreach': {
      // Checked on the record as it stands, before the case is even asked.
      if (!channelAllowed(m.record, action.channel)) no.push(rule('safe_contact'));
      atStep('client_conversation');
      const on = addDays(today, action.dayOffset);
      if (on > today || on < m.openedOn) no.push(invalid());
      const last = m.conversation.outreach.at(-1);
      if (last && daysApart(last, on) < m.policy.outreachSpacingDays) no.push(rule('no_abandonment'));
      break;
    }
    case 'waiver':
      atStep('client_conversation');
      if (isCounselor) no.push(rule('separation_of_duties'));
      if (action.basis === 'client_initiated' && m.reason !== 'client_request') no.push(rule('no_abandonment'));
      if (action.basis === 'clinician_safety' && m.reason !== 'clinician_safety') no.push(rule('no_abandonment'));
      break;
    case 'propose':
      if (m.step === 'follow_up') no.push(step());
      break;
    case 'response': {
      const r = pickReferral(m, action.pick);
      if (!r) no.push(notFound());
      else if (r.state !== 'sent') no.push(step());
      if (action.response === 'declined' && !action.withReason) no.push(invalid());
      break;
    }
    case 'appointment': {
      const r = pickReferral(m, action.pick);
      if (!r) no.push(notFound());
      else if (r.state !== 'accepted' && r.state !== 'no_show') no.push(step());
      break;
    }
    case 'outcome': {
      const r = pickReferral(m, action.pick);
      if (!r) no.push(notFound());
      else if (r.state !== 'first_appointment_scheduled') no.push(step());
      break;
    }
    case 'withdraw': {
      const r = pickReferral(m, action.pick);
      if (!r) no.push(notFound());
      else if (!['proposed', 'sent', 'accepted'].includes(r.state)) no.push(step());
      break;
    }
    case 'consent':
      if (action.expiresOffset < 0 || action.signedOffset > 0) no.push(invalid());
      break;
    case 'revoke': {
      const c = pickConsent(m, action.pick);
      if (!c) no.push(notFound());
      else if (c.revoked) no.push(step());
      break;
    }
    case 'riskFlag':
    case 'safetyPlan':
    case 'engagement':
    case 'cancel':
      break;
  }
  return no.length ? { accepted: false, allowed: no } : { accepted: true, status: [200] };
}

/** The record changed: an open case re-reads it, and a flag it did not carry needs a new plan and approval. */
function refresh(m: CaseModel): void {
  if (m.status !== 'open') return;
  const added = m.record.riskFlags.some((f) => !m.facts.riskFlags.includes(f));
  if (added) m.lastFlagAt = tick(m);
  m.facts = structuredClone(m.record);
  // The record names the counselor: the case follows it, and so does who may see it.
  m.counselor = clinician(m.record.counselorId, m.agencyId);
}

/** Applies an accepted action by `who` (in the case's agency unless it is a record write elsewhere). */
export function apply(m: CaseModel, action: Action, who: Who, today: string): void {
  switch (action.kind) {
    case 'review':
      if (action.decision === 'approve') {
        m.review = 'approved';
        // Approving a risk-flagged decision is the director's approval of its plan.
        if (atRisk(m.facts)) m.approvedAt = tick(m);
      } else m.review = action.decision === 'reject' ? 'rejected' : 'sent_back';
      break;
    case 'revision':
      m.review = 'awaiting_review';
      break;
    case 'riskFlag':
      if (!m.record.riskFlags.includes(action.flag)) m.record.riskFlags.push(action.flag);
      refresh(m);
      break;
    case 'safetyPlan':
      m.planAt = tick(m);
      break;
    case 'approvePlan':
      m.approvedAt = tick(m);
      break;
    case 'conversation':
      m.conversation.heldOn = addDays(today, action.heldOffset);
      m.conversation.choice = action.choice;
      break;
    case 'outreach':
      m.conversation.outreach.push(addDays(today, action.dayOffset));
      if (m.conversation.outreach.length >= m.policy.outreachAttempts)
        m.conversation.precludedBy = 'outreach_exhausted';
      break;
    case 'waiver':
      m.conversation.precludedBy = action.basis;
      break;
    case 'propose':
      m.queue.push(...action.candidates);
      break;
    case 'response':
      pickReferral(m, action.pick)!.state = action.response;
      break;
    case 'appointment':
      pickReferral(m, action.pick)!.state = 'first_appointment_scheduled';
      break;
    case 'outcome':
      pickReferral(m, action.pick)!.state = action.outcome === 'kept' ? 'first_appointment_kept' : 'no_show';
      if (action.outcome === 'kept') m.engaged = true;
      break;
    case 'withdraw':
      pickReferral(m, action.pick)!.state = 'withdrawn';
      break;
    case 'consent':
      m.consents.push({
        consentId: null,
        providerId: action.providerId,
        coversSud: action.coversSud,
        expiresOn: addDays(today, action.expiresOffset),
        revoked: false,
      });
      break;
    case 'revoke': {
      const consent = pickConsent(m, action.pick)!;
      consent.revoked = true;
      // A revoked release stops the handoff to that provider, wherever it stands.
      const pending: RefState[] = ['proposed', 'sent', 'accepted', 'first_appointment_scheduled', 'no_show'];
      for (const r of m.referrals) {
        if (r.external && r.providerId === consent.providerId && pending.includes(r.state)) r.state = 'withdrawn';
      }
      break;
    }
    case 'engagement':
      m.engaged = action.engaged;
      break;
    case 'cancel':
      m.status = 'cancelled';
      m.step = 'done';
      break;
    case 'record':
      if (who.agencyId !== m.agencyId) break;
      m.record = structuredClone(action.record);
      refresh(m);
      break;
    case 'readLetter':
      break;
  }
}

/** Moves the case on by itself as far as it goes without a person: the process of DOMAIN.md, step by step. */
export function settle(m: CaseModel, today: string): void {
  for (let guard = 0; guard < 100 && m.status === 'open'; guard++) {
    switch (m.step) {
      case 'decision_review':
        if (m.review === 'approved') m.step = 'client_conversation';
        else if (m.review === 'rejected') {
          m.status = 'rejected';
          m.step = 'done';
        } else return;
        continue;
      case 'client_conversation': {
        const { heldOn, choice, precludedBy } = m.conversation;
        if (!heldOn && !precludedBy) return;
        // Client autonomy: no referral for a client who declined (or could not be reached), unless at risk.
        const noReferral = choice === 'decline_services' || precludedBy !== null;
        m.step = noReferral && !atRisk(m.facts) ? 'closure_letter' : 'referral_handoff';
        // A client at risk who declined (or could not be reached) goes to a director instead.
        if (noReferral && atRisk(m.facts)) m.escalations.push('risk_client_declined');
        continue;
      }
      case 'referral_handoff': {
        const current = currentReferral(m);
        if (current?.state === 'first_appointment_scheduled' || current?.state === 'first_appointment_kept') {
          m.step = 'closure_letter';
          continue;
        }
        if (!current) {
          const next = m.queue.shift();
          if (!next) return;
          // A decline (or silence) re-routes: the referral that ended that way gives way to the next candidate.
          const ended = m.referrals.filter((r) => ['declined', 'expired', 'withdrawn'].includes(r.state)).at(-1);
          const rerouted = ended?.state === 'declined' || ended?.state === 'expired';
          if (rerouted) {
            ended.state = 're_routed';
            m.reroutes++;
          }
          m.referrals.push({
            referralId: null,
            providerId: next.providerId,
            external: next.external,
            state: 'proposed',
          });
          // Re-routed as often as the policy allows (2): a director hears of it.
          if (rerouted && m.reroutes >= 2) m.escalations.push('referral_reroute_limit');
          continue;
        }
        if (current.state === 'proposed') {
          if (current.external && !releaseFor(m, current.providerId, today)) return;
          current.state = 'sent';
          continue;
        }
        return;
      }
      case 'closure_letter': {
        if (!mayClose(m)) return;
        const channel = letterChannel(m.record);
        m.letter = { delivery: channel ? 'queued' : 'held_for_in_person', channel };
        m.step = 'follow_up';
        continue;
      }
      case 'follow_up':
        if (m.engaged) {
          m.status = 'closed';
          m.step = 'done';
        }
        return;
      case 'done':
        return;
    }
  }
}

/** The case as the test compares it: the model's view here, the service's from its read model. */
export function projectModel(m: CaseModel) {
  return {
    status: m.status,
    step: m.step,
    review: m.review,
    counselorId: m.facts.counselorId,
    riskFlags: [...m.facts.riskFlags].sort(),
    sud: m.facts.hasSubstanceUseRecords,
    contact: contactShape(m.facts.contact),
    riskGate: atRisk(m.facts) ? { plan: planCovers(m), approval: approvalCovers(m) } : null,
    conversation: {
      heldOn: m.conversation.heldOn,
      choice: m.conversation.choice,
      precludedBy: m.conversation.precludedBy,
      outreach: m.conversation.outreach.length,
    },
    referrals: m.referrals.map((r) => ({ providerId: r.providerId, external: r.external, state: r.state })),
    consents: m.consents.map((c) => ({ providerId: c.providerId, coversSud: c.coversSud, revoked: c.revoked })),
    letter: m.letter,
    engaged: m.engaged,
    escalations: m.escalations,
  };
}
export type Projection = ReturnType<typeof projectModel>;

export function contactShape(c: {
  channels: { channel: string; safe: boolean }[];
  noContactAtHome: boolean;
  email?: string | null;
  postalAddress?: string | null;
  /** A case holds whether an address is on record, not the address (older cases held the address). */
  hasEmail?: boolean;
  hasPostalAddress?: boolean;
}) {
  return {
    channels: c.channels.map((x) => `${x.channel}:${x.safe ? 'safe' : 'unsafe'}`),
    noContactAtHome: c.noContactAtHome,
    email: c.hasEmail ?? !!c.email,
    postalAddress: c.hasPostalAddress ?? !!c.postalAddress,
  };
}

/** The service's process state (GET /v1/cases/:id `process`, or the read model's row) in the model's terms. */
export function projectService(status: string, step: string, s: any): Projection {
  const risky = s.facts.riskFlags.length > 0;
  return {
    status: status as Projection['status'],
    step: step as Projection['step'],
    review: s.review.state,
    counselorId: s.facts.counselorId,
    riskFlags: [...s.facts.riskFlags].sort(),
    sud: s.facts.hasSubstanceUseRecords,
    contact: contactShape(s.facts.contact),
    riskGate: risky
      ? {
          plan: s.risk.planCoversFlags === s.risk.flagCount,
          approval: s.risk.approvalCoversFlags === s.risk.flagCount,
        }
      : null,
    conversation: {
      heldOn: s.conversation.heldOn,
      choice: s.conversation.clientChoice,
      precludedBy: s.conversation.precludedBy,
      outreach: s.conversation.outreach.length,
    },
    referrals: s.referrals.map((r: any) => ({
      providerId: r.candidate.providerId,
      external: r.candidate.external,
      state: r.state,
    })),
    consents: s.consents.map((c: any) => ({
      providerId: c.recipientProviderId,
      coversSud: c.coversSubstanceUseRecords,
      revoked: c.revokedAt !== null,
    })),
    letter: s.letter ? { delivery: s.letter.delivery, channel: s.letter.channel } : null,
    engaged: s.followUp.engaged,
    escalations: s.escalations.map((e: { kind: string }) => e.kind),
  };
}
