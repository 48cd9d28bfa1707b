/**
 * What a list of cases needs to know about one case, kept in the read model so a list is a plain indexed query:
 * when it next needs someone, whether it was escalated, and which rules hold it. Pure: the activity that writes
 * the read model calls it with the instant of the change.
 */
import { type CaseProcessState, currentReferral, nextFollowUp } from './process';
import { clientTold, noticeDueDate } from './rules/deadlines';
import { agencyToday, explain } from './rules/explain';
import { RULES } from './rules/rule';
import { DEFAULT_TIME_ZONE, localDate, startOfLocalDay } from './time';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** The rules a case can be held by (the access and order rules never hold one). */
export const BLOCKING_RULES = [
  RULES.separationOfDuties,
  RULES.noAbandonment,
  RULES.riskFirst,
  RULES.safeContact,
  RULES.consentBeforeDisclosure,
  RULES.clientAutonomy,
  RULES.deadlines,
] as const;
export type BlockingRule = (typeof BLOCKING_RULES)[number];

export interface ListFacts {
  /** The next moment the case needs someone (epoch ms); null when nothing is due or the case has ended. */
  dueAtMs: number | null;
  escalated: boolean;
  /** Each rule that holds the case now, once, sorted. */
  blockerRules: string[];
}

/**
 * The earliest of: the review's SLA end, the notice due date (the start of the agency's day), the sent
 * referral's answer deadline, and the next follow-up. `stepSinceMs` is when the case entered its current step:
 * the review clock and the follow-up calendar count from it.
 */
export function listFacts(state: CaseProcessState, at: { nowMs: number; stepSinceMs: number }): ListFacts {
  if (state.status !== 'open') return { dueAtMs: null, escalated: false, blockerRules: [] };
  const timeZone = state.policy.timeZone ?? DEFAULT_TIME_ZONE;
  const due: number[] = [];

  if (state.step === 'decision_review' && state.review.state === 'awaiting_review') {
    // The SLA restarts after each overdue escalation. After a revision it restarts too, at a moment the state
    // does not keep: the step's start stands in, so a revised review shows as due early rather than late.
    const lastOverdue = state.escalations.filter((e) => e.kind === 'review_overdue').at(-1);
    const since = Math.max(at.stepSinceMs, lastOverdue ? Date.parse(lastOverdue.at) : 0);
    due.push(since + state.policy.reviewSlaHours * HOUR_MS);
  }

  const noticeDue = noticeDueDate(state.facts.lastDay, state.policy);
  if (noticeDue && !clientTold(state)) due.push(startOfLocalDay(noticeDue, timeZone));

  const referral = currentReferral(state);
  if (state.step === 'referral_handoff' && referral?.state === 'sent' && referral.sentAt) {
    due.push(Date.parse(referral.sentAt) + state.policy.referralSlaDays * DAY_MS);
  }

  if (state.step === 'follow_up') {
    const next = nextFollowUp(state, localDate(at.stepSinceMs, timeZone));
    if (next) due.push(startOfLocalDay(next.dueOn, timeZone));
  }

  const { blockers } = explain(state, agencyToday(state, at.nowMs));
  return {
    dueAtMs: due.length > 0 ? Math.min(...due) : null,
    escalated: state.escalations.length > 0,
    blockerRules: [...new Set(blockers.map((b) => b.rule))].sort(),
  };
}
