/**
 * The case process: its state, its policy, and the rules that refuse an action.
 * Pure functions of the state, shared by the workflow (validators) and tests; no I/O.
 */
import type { Actor, CaseKind, CaseReason, CaseStatus } from './case';
import { PERMISSIONS, type Permission, may } from './roles';
import { RULES, RuleRefusal } from './rules/rule';
import { DEFAULT_LOCALE, DEFAULT_TIME_ZONE, addDays } from './time';

export const RISK_FLAGS = ['suicide_risk', 'domestic_violence', 'recent_relapse'] as const;
export type RiskFlag = (typeof RISK_FLAGS)[number];

export const CONTACT_CHANNELS = ['portal', 'phone', 'email', 'mail', 'in_person'] as const;
export type ContactChannel = (typeof CONTACT_CHANNELS)[number];

export interface ContactPreferences {
  /** Channels in the client's order of preference; `safe` means confirmed safe by the client. */
  channels: { channel: ContactChannel; safe: boolean }[];
  noContactAtHome: boolean;
  /** Where a letter by `email` goes; the letter goes there only if email is a channel the route allows. */
  email?: string | null;
  /** Where a letter by `mail` goes (the lines of the envelope's window). */
  postalAddress?: string | null;
}

/**
 * What a case holds of a client's contact: the channels, which are safe, and whether an address is on record for
 * each that needs one; never the address. The letter's activity and the sender read it from the record.
 */
export interface CaseContact {
  channels: ContactPreferences['channels'];
  noContactAtHome: boolean;
  hasEmail?: boolean;
  hasPostalAddress?: boolean;
  /** Only in cases that read their facts before (dropped at their next re-read); never written now. */
  email?: string | null;
  postalAddress?: string | null;
}

/** The record's contact preferences (or an older case's) as a case holds them now: the addresses left behind. */
export function caseContact(contact: CaseContact): CaseContact {
  return {
    channels: contact.channels.map((c) => ({ channel: c.channel, safe: c.safe })),
    noContactAtHome: contact.noContactAtHome,
    hasEmail: contact.hasEmail ?? Boolean(contact.email),
    hasPostalAddress: contact.hasPostalAddress ?? Boolean(contact.postalAddress),
  };
}

export const CLIENT_CHOICES = ['accept_proposed', 'choose_own', 'decline_services'] as const;
export type ClientChoice = (typeof CLIENT_CHOICES)[number];

export const STEPS = [
  'opening',
  'decision_review',
  'client_conversation',
  'referral_handoff',
  'closure_letter',
  'follow_up',
  'done',
] as const;
export type Step = (typeof STEPS)[number];

export const REFERRAL_STATES = [
  'proposed',
  'sent',
  'accepted',
  'declined',
  'expired',
  'first_appointment_scheduled',
  'first_appointment_kept',
  'no_show',
  're_routed',
  'withdrawn',
] as const;
export type ReferralState = (typeof REFERRAL_STATES)[number];

/** Every duration and count of the process, per agency, copied into a case when it starts. */
export interface Policy {
  reviewSlaHours: number;
  outreachAttempts: number;
  outreachSpacingDays: number;
  noticeDays: number;
  noticeWarningDays: number;
  referralSlaDays: number;
  rerouteLimit: number;
  followUpOffsetsDays: number[];
  /** The agency's IANA time zone: "today", deadlines and expiries are its dates. Absent in cases started before it existed. */
  timeZone?: string;
  /** How letters write dates ("November 29, 2026"). */
  locale?: string;
  /** Directors who take escalations, in order: level 1 goes to the first, each later level to the next. */
  coveringDirectors?: string[];
  /** Caring contacts after closure for a client who carried a suicide-risk flag (days after closing). */
  caringContactDays?: number[];
}

export const DEFAULT_POLICY: Policy = Object.freeze({
  reviewSlaHours: 72,
  outreachAttempts: 3,
  outreachSpacingDays: 2,
  noticeDays: 14,
  noticeWarningDays: 3,
  referralSlaDays: 7,
  rerouteLimit: 2,
  followUpOffsetsDays: [7, 30],
  timeZone: DEFAULT_TIME_ZONE,
  locale: DEFAULT_LOCALE,
  coveringDirectors: [],
  caringContactDays: [14, 45, 90, 180, 365],
});

export interface Consent {
  consentId: string;
  recipientProviderId: string;
  disclosed: string;
  purpose: string;
  expiresOn: string;
  coversSubstanceUseRecords: boolean;
  revocable: true;
  signedOn: string;
  revokedAt: string | null;
}

export interface Candidate {
  providerId: string;
  name: string;
  external: boolean;
  contact: string;
}

export interface Referral {
  referralId: string;
  candidate: Candidate;
  state: ReferralState;
  history: { state: ReferralState; at: string; reason?: string }[];
  sentAt: string | null;
  consentId: string | null;
  appointmentAt: string | null;
}

/** One follow-up after closure: a check at the policy's offsets, or a caring contact for a client at suicide risk. */
export interface FollowUpPlan {
  offsetDays: number;
  dueOn: string;
  kind: 'follow_up' | 'caring_contact';
}

/**
 * The follow-up a closed case owes its client: checks at the policy's offsets and, for a client who carried a
 * suicide-risk flag, caring contacts over months (both stop once the client engages with the new provider).
 */
export function followUpPlan(policy: Policy, closedOn: string, carriedSuicideRisk: boolean): FollowUpPlan[] {
  const byDay = new Map<number, FollowUpPlan['kind']>();
  for (const d of carriedSuicideRisk ? (policy.caringContactDays ?? []) : []) byDay.set(d, 'caring_contact');
  for (const d of policy.followUpOffsetsDays) byDay.set(d, 'follow_up');
  return [...byDay.entries()]
    .sort(([a], [b]) => a - b)
    .map(([offsetDays, kind]) => ({ offsetDays, kind, dueOn: addDays(closedOn, offsetDays) }));
}

/**
 * The next follow-up a closed case will make: from its schedule, or, for a case closed before the schedule was
 * kept, from the policy's offsets counted from `closedOn` (when known). None once the client engaged.
 */
export function nextFollowUp(state: CaseProcessState, closedOn?: string): FollowUpPlan | undefined {
  if (state.followUp.engaged) return undefined;
  const plan =
    state.followUp.schedule ??
    (closedOn
      ? state.policy.followUpOffsetsDays.map((offsetDays) => ({
          offsetDays,
          kind: 'follow_up' as const,
          dueOn: addDays(closedOn, offsetDays),
        }))
      : []);
  const done = state.followUp.checks.at(-1)?.offsetDays ?? 0;
  return plan.find((p) => p.offsetDays > done);
}

export interface Escalation {
  kind: 'review_overdue' | 'notice_at_risk' | 'notice_missed' | 'referral_reroute_limit' | 'risk_client_declined';
  at: string;
  level: number;
}

/** A client's safety facts, as the agency's client record holds them: the only place a case takes them from. */
export interface ClientFacts {
  counselorId: string;
  riskFlags: RiskFlag[];
  contact: ContactPreferences;
  hasSubstanceUseRecords: boolean;
}

/** A client's facts as a case holds them: the record's, the contact without its addresses (`caseContact`). */
export type CaseClientFacts = Omit<ClientFacts, 'contact'> & { contact: CaseContact };

/** The case's view of a record's facts (or of an older case's). */
export function caseClientFacts(facts: CaseClientFacts): CaseClientFacts {
  return {
    counselorId: facts.counselorId,
    riskFlags: facts.riskFlags,
    contact: caseContact(facts.contact),
    hasSubstanceUseRecords: facts.hasSubstanceUseRecords,
  };
}

export interface CaseFacts {
  caseId: string;
  agencyId: string;
  clientId: string;
  counselorId: string;
  kind: CaseKind;
  reason: CaseReason;
  /** The counselor's last day, for a relocation or departure (ISO date). */
  lastDay: string | null;
  riskFlags: RiskFlag[];
  contact: CaseContact;
  /** Whether the client's record holds substance-use-disorder (42 CFR Part 2) records. */
  hasSubstanceUseRecords: boolean;
}

export interface CaseProcessState {
  /** Read from the agency's client record when the case opens, and again whenever the record changes. */
  facts: CaseFacts;
  /** The agency's date the case opened (absent in cases started before it was kept). */
  openedOn?: string;
  policy: Policy;
  status: CaseStatus;
  step: Step;
  review: {
    state: 'awaiting_review' | 'sent_back' | 'approved' | 'rejected';
    rounds: number;
    lastRationale: string | null;
    approvedBy: string | null;
  };
  risk: {
    /** Counts raised flags; a plan and an approval count only for the flags raised before them. */
    flagCount: number;
    safetyPlanAt: string | null;
    safetyPlanRef: string | null;
    /** `flagCount` when the plan was documented, and when it was approved. */
    planCoversFlags: number;
    approvalCoversFlags: number;
    approvedBy: string | null;
    /** Whether the client carried a suicide-risk flag at any time during the case (caring contacts follow). */
    carriedSuicideRisk?: boolean;
  };
  conversation: {
    heldOn: string | null;
    clientChoice: ClientChoice | null;
    lastSessionDate: string | null;
    outreach: { attemptedOn: string; channel: ContactChannel }[];
    /** Why the process went on without the conversation, if it did. */
    precludedBy: 'outreach_exhausted' | 'client_initiated' | 'clinician_safety' | null;
    informedInTime: boolean | null;
  };
  referrals: Referral[];
  reroutes: number;
  consents: Consent[];
  letter: {
    letterId: string;
    /** `queued`: in the outbox; the audit's `letter.sent` says when it left. `sent`: cases from before the outbox. */
    delivery: 'queued' | 'sent' | 'held_for_in_person';
    channel: ContactChannel | null;
    /** The safe-contact fact that held it, when it was held. */
    heldBecause?: string | null;
  } | null;
  followUp: {
    engaged: boolean;
    checks: { offsetDays: number; engaged: boolean }[];
    /** What follow-up will come, in the agency's dates (absent in cases closed before it was kept). */
    schedule?: FollowUpPlan[];
  };
  escalations: Escalation[];
  /** Who cancelled (null: the system, e.g. a cancel sent through Temporal itself). */
  cancellation: { actor: Actor | null; reason: string; requestId: string | null } | null;
}

/** The state of a case once opened: its facts from the client record, the agency's policy, the day it opened. */
export function openedState(
  state: CaseProcessState,
  opened: { policy: Policy; facts: CaseClientFacts; openedOn: string },
): CaseProcessState {
  return {
    ...state,
    policy: opened.policy,
    openedOn: opened.openedOn,
    facts: { ...state.facts, ...opened.facts, riskFlags: [...opened.facts.riskFlags] },
    risk: {
      ...state.risk,
      flagCount: opened.facts.riskFlags.length,
      carriedSuicideRisk: opened.facts.riskFlags.includes('suicide_risk'),
    },
    status: 'open',
    step: 'decision_review',
  };
}

function refuse(rule: string, message: string): never {
  throw new RuleRefusal(rule, message);
}

/** Function-level access inside the workflow: the same matrix the API checks. */
export function requireRole(actor: Actor, permission: Permission, what: string): void {
  if (!may(actor.role, permission)) {
    const roles = PERMISSIONS[permission].join(' or ');
    refuse(RULES.role, `${what} needs the role ${roles}; ${actor.id} acts as ${actor.role}`);
  }
}

export function requireOpen(state: CaseProcessState): void {
  if (state.status !== 'open') refuse(RULES.step, `the case is ${state.status}`);
  if (state.cancellation) refuse(RULES.step, 'the case is being cancelled');
}

export function requireStep(state: CaseProcessState, steps: Step[], what: string): void {
  requireOpen(state);
  if (!steps.includes(state.step)) {
    refuse(RULES.step, `${what} is not possible now: the case is at ${state.step}, not ${steps.join(' or ')}`);
  }
}

/** The case's own counselor, or a director of the agency (after the role check of the matrix). */
export function requireCounselorOrDirector(state: CaseProcessState, actor: Actor, what: string): void {
  if (actor.role === 'clinical_director') return;
  if (actor.role === 'counselor' && actor.id === state.facts.counselorId) return;
  refuse(RULES.role, `${what} is for the case's counselor or a clinical director`);
}

export function acceptedReferral(state: CaseProcessState): Referral | undefined {
  return state.referrals.find((r) =>
    ['accepted', 'first_appointment_scheduled', 'first_appointment_kept', 'no_show'].includes(r.state),
  );
}

export function currentReferral(state: CaseProcessState): Referral | undefined {
  return state.referrals.find((r) => ['proposed', 'sent'].includes(r.state)) ?? acceptedReferral(state);
}

/**
 * Ids and the case's own choices. The client's facts (counselor, risk flags, contact preferences,
 * substance-use records) are read from the agency's client record by the first activity, never taken from here.
 */
export interface CaseInput {
  caseId: string;
  agencyId: string;
  clientId: string;
  kind: CaseKind;
  reason: CaseReason;
  lastDay?: string | null;
  /** Only in cases started before facts came from the client record (replayed, never sent now). */
  counselorId?: string;
  riskFlags?: RiskFlag[];
  contact?: ContactPreferences;
  hasSubstanceUseRecords?: boolean;
  clientName?: string;
  /** Receivers proposed when the case starts (a caseload transfer proposes one per client). */
  proposedCandidates?: Candidate[];
  transferId?: string | null;
  openedBy: Actor;
  requestId: string | null;
  /** Set when a run continues a case as new (its follow-up): the case as it stood, picked up where it was. */
  resume?: CaseResume;
}

/** What a case carries into the run that continues it. */
export interface CaseResume {
  state: CaseProcessState;
  /** The last audit event's sequence number: the next run's events follow on. */
  eventSeq: number;
  /** The newest action ids applied, so an action retried across the new run is still applied once. */
  actionIds: string[];
}
