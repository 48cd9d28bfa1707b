/**
 * The case process: its state, its policy, and the rules that refuse an action.
 * Pure functions of the state, shared by the workflow (validators) and tests; no I/O.
 */
import type { Actor, CaseKind, CaseReason, CaseStatus } from './case';

export const RISK_FLAGS = ['suicide_risk', 'domestic_violence', 'recent_relapse'] as const;
export type RiskFlag = (typeof RISK_FLAGS)[number];

export const CONTACT_CHANNELS = ['portal', 'phone', 'email', 'mail', 'in_person'] as const;
export type ContactChannel = (typeof CONTACT_CHANNELS)[number];

export interface ContactPreferences {
  /** Channels in the client's order of preference; `safe` means confirmed safe by the client. */
  channels: { channel: ContactChannel; safe: boolean }[];
  noContactAtHome: boolean;
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

export interface Escalation {
  kind: 'review_overdue' | 'notice_at_risk' | 'notice_missed' | 'referral_reroute_limit' | 'risk_client_declined';
  at: string;
  level: number;
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
  contact: ContactPreferences;
  /** Whether the client's record holds substance-use-disorder (42 CFR Part 2) records. */
  hasSubstanceUseRecords: boolean;
}

export interface CaseProcessState {
  facts: CaseFacts;
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
  letter: { letterId: string; delivery: 'sent' | 'held_for_in_person'; channel: ContactChannel | null } | null;
  followUp: { engaged: boolean; checks: { offsetDays: number; engaged: boolean }[] };
  escalations: Escalation[];
  /** Who cancelled (null: the system, e.g. a cancel sent through Temporal itself). */
  cancellation: { actor: Actor | null; reason: string; requestId: string | null } | null;
}

/** A refusal: the rule that refused, and what is missing. */
export class RuleRefusal extends Error {
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

export const RULES = {
  separationOfDuties: 'separation_of_duties',
  noAbandonment: 'no_abandonment',
  riskFirst: 'risk_first',
  safeContact: 'safe_contact',
  consentBeforeDisclosure: 'consent_before_disclosure',
  clientAutonomy: 'client_autonomy',
  deadlines: 'deadlines',
  role: 'role',
  step: 'step',
} as const;

function refuse(rule: string, message: string): never {
  throw new RuleRefusal(rule, message);
}

export function requireRole(actor: Actor, roles: Actor['role'][], what: string): void {
  if (!roles.includes(actor.role)) {
    refuse(RULES.role, `${what} needs the role ${roles.join(' or ')}; ${actor.id} acts as ${actor.role}`);
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

/** The case's counselor, or a director of the agency. */
export function requireCounselorOrDirector(state: CaseProcessState, actor: Actor, what: string): void {
  if (actor.role === 'clinical_director') return;
  if (actor.role === 'counselor' && actor.id === state.facts.counselorId) return;
  refuse(RULES.role, `${what} is for the case's counselor or a clinical director`);
}

export function hasActiveRisk(state: CaseProcessState): boolean {
  return state.facts.riskFlags.length > 0;
}

/** Risk first: a documented safety plan and a director's approval, both after the latest flag. */
export function riskGateOpen(state: CaseProcessState): boolean {
  if (!hasActiveRisk(state)) return true;
  const { flagCount, planCoversFlags, approvalCoversFlags } = state.risk;
  return planCoversFlags === flagCount && approvalCoversFlags === flagCount;
}

export function acceptedReferral(state: CaseProcessState): Referral | undefined {
  return state.referrals.find((r) =>
    ['accepted', 'first_appointment_scheduled', 'first_appointment_kept', 'no_show'].includes(r.state),
  );
}

export function currentReferral(state: CaseProcessState): Referral | undefined {
  return state.referrals.find((r) => ['proposed', 'sent'].includes(r.state)) ?? acceptedReferral(state);
}

/** Whether the client chose to decline further services (and may: autonomy). */
export function clientDeclinedServices(state: CaseProcessState): boolean {
  return state.conversation.clientChoice === 'decline_services';
}

/** No referral to make: the client declined, or could not be reached to choose one. */
export function noReferralWanted(state: CaseProcessState): boolean {
  return clientDeclinedServices(state) || state.conversation.precludedBy !== null;
}

/** Safe contact: with a domestic-violence flag or "no contact at home", only channels confirmed safe. */
export function contactRestricted(facts: CaseFacts): boolean {
  return facts.riskFlags.includes('domestic_violence') || facts.contact.noContactAtHome;
}

export function channelAllowed(facts: CaseFacts, channel: ContactChannel): boolean {
  if (channel === 'in_person' || !contactRestricted(facts)) return true;
  return facts.contact.channels.some((c) => c.channel === channel && c.safe);
}

/** A consent that lets this case disclose to this provider today, or the reason there is none. */
export function consentFor(state: CaseProcessState, providerId: string, today: string): Consent | string {
  const naming = state.consents.filter((c) => c.recipientProviderId === providerId);
  if (naming.length === 0) return `no release of information names ${providerId}`;
  const live = naming.filter((c) => !c.revokedAt);
  if (live.length === 0) return `the release naming ${providerId} was revoked`;
  const current = live.filter((c) => c.expiresOn >= today);
  if (current.length === 0) return `the release naming ${providerId} expired`;
  if (state.facts.hasSubstanceUseRecords) {
    const sud = current.find((c) => c.coversSubstanceUseRecords);
    if (!sud)
      return `the client has substance-use-disorder records and no release naming ${providerId} covers them (42 CFR Part 2)`;
    return sud;
  }
  return current[0]!;
}

/**
 * Safe contact: the channel a letter may go by, or null when it must be held for in-person delivery.
 * With a domestic-violence flag or "no contact at home", only a channel the client confirmed safe.
 */
export function letterChannel(facts: CaseFacts): ContactChannel | null {
  const restricted = contactRestricted(facts);
  const usable = facts.contact.channels.filter((c) => c.channel !== 'in_person');
  const chosen = restricted ? usable.find((c) => c.safe) : usable[0];
  return chosen?.channel ?? null;
}

/** The date by which a relocating counselor's client must be told (ISO date), if there is a last day. */
export function noticeDueDate(facts: CaseFacts, policy: Policy): string | null {
  if (!facts.lastDay) return null;
  return addDays(facts.lastDay, -policy.noticeDays);
}

export function addDays(isoDate: string, days: number): string {
  const date = new Date(`${isoDate.slice(0, 10)}T00:00:00.000Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

export function daysBetween(fromIsoDate: string, toIsoDate: string): number {
  const from = Date.parse(`${fromIsoDate.slice(0, 10)}T00:00:00.000Z`);
  const to = Date.parse(`${toIsoDate.slice(0, 10)}T00:00:00.000Z`);
  return Math.round((to - from) / 86_400_000);
}

export interface Blocker {
  rule: string;
  detail: string;
}

/** What the case waits for now, and what would stop it from closing: the answer a director asks for. */
export function explain(state: CaseProcessState): { waitingFor: string[]; blockers: Blocker[] } {
  const waitingFor: string[] = [];
  const blockers: Blocker[] = [];
  if (state.status !== 'open') return { waitingFor, blockers };
  switch (state.step) {
    case 'decision_review':
      waitingFor.push(
        state.review.state === 'sent_back'
          ? `the counselor (${state.facts.counselorId}) to revise the decision that was sent back`
          : `a clinical director other than ${state.facts.counselorId} to review the decision`,
      );
      break;
    case 'client_conversation': {
      const attempts = state.conversation.outreach.length;
      waitingFor.push(
        `the counselor to record the ending conversation with the client` +
          (attempts ? ` (${attempts} of ${state.policy.outreachAttempts} outreach attempts made)` : ''),
      );
      break;
    }
    case 'referral_handoff': {
      const referral = currentReferral(state);
      if (!referral) waitingFor.push('staff to propose a receiving clinician or provider');
      else if (referral.state === 'proposed') {
        waitingFor.push(`a release of information naming ${referral.candidate.name} before the referral is sent`);
      } else if (referral.state === 'sent') waitingFor.push(`${referral.candidate.name} to accept or decline`);
      else if (referral.state === 'accepted')
        waitingFor.push(`the first appointment with ${referral.candidate.name} to be scheduled`);
      break;
    }
    case 'closure_letter':
      waitingFor.push('the closure letter to be issued');
      break;
    case 'follow_up':
      waitingFor.push('the follow-up checks after closure');
      break;
    default:
      break;
  }
  if (hasActiveRisk(state)) {
    if (!riskGateOpen(state)) {
      blockers.push({
        rule: RULES.riskFirst,
        detail:
          state.risk.planCoversFlags === state.risk.flagCount
            ? 'a clinical director must approve the safety plan'
            : 'a continuity/safety plan must be documented, then approved by a clinical director',
      });
    }
    if (!acceptedReferral(state)) {
      blockers.push({
        rule: RULES.riskFirst,
        detail: 'a receiving provider must accept the referral before a client at risk is closed',
      });
    }
  }
  if (!state.conversation.heldOn && !state.conversation.precludedBy) {
    blockers.push({
      rule: RULES.noAbandonment,
      detail: 'pretermination counseling has not been held or documented as precluded',
    });
  }
  if (
    state.step !== 'follow_up' &&
    state.step !== 'done' &&
    !clientDeclinedServices(state) &&
    !acceptedReferral(state)
  ) {
    blockers.push({ rule: RULES.noAbandonment, detail: 'no receiving provider has accepted the client yet' });
  }
  return { waitingFor, blockers };
}
