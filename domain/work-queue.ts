/**
 * Every point where a case waits on a person is a task in that person's (or role's) queue. This is the one place
 * that says which waits a case has open, as a pure function of its state: the read model's writer opens the
 * tasks it lists and closes the ones it no longer lists, so a task closes by itself when what it waits for happens.
 */
import type { Role } from './case';
import { type CaseProcessState, acceptedReferral, currentReferral } from './process';
import { noReferralWanted } from './rules/client-autonomy';
import { isBlocker, releaseFor } from './rules/consent-before-disclosure';
import { clientTold, noticeDueDate } from './rules/deadlines';
import { hasActiveRisk, planCoversFlags, riskGateOpen } from './rules/risk-first';
import { DEFAULT_TIME_ZONE, addDays, localDate, startOfLocalDay } from './time';

export const WAIT_KINDS = [
  'review_decision',
  'revise_decision',
  'document_safety_plan',
  'approve_safety_plan',
  'hold_conversation',
  'outreach_attempt',
  'propose_receiver',
  'record_release',
  'referral_answer',
  'schedule_first_appointment',
  'record_first_appointment',
] as const;
export type WaitKind = (typeof WAIT_KINDS)[number];

/** Tasks a person closes (an outreach made, a letter handed over): they outlive the wait that raised them. */
export const ACTION_KINDS = [
  'outreach.follow_up',
  'outreach.caring_contact',
  'outreach.first_appointment_no_show',
  'delivery.failed',
] as const;

export interface TaskSpec {
  /** Stable per case and wait, so a retried write opens nothing twice. */
  key: string;
  kind: WaitKind | `escalation.${string}`;
  assigneeRole: Role;
  /** A named person; null for anyone of the role in the agency. */
  assigneeId: string | null;
  dueAt: string | null;
  detail: string;
  /** For an escalation: its level (1 = first), which picks the covering director. */
  level?: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Whether an escalation still stands: it closes when what it escalated has happened. */
function escalationStands(state: CaseProcessState, kind: string): boolean {
  switch (kind) {
    case 'review_overdue':
      return state.step === 'decision_review' && state.review.state === 'awaiting_review';
    case 'notice_at_risk':
    case 'notice_missed':
      return !clientTold(state);
    case 'referral_reroute_limit':
    case 'risk_client_declined':
      return acceptedReferral(state) === undefined;
    default:
      return true;
  }
}

/** The waits a case holds open now (empty once it has ended). */
export function openWaits(state: CaseProcessState, nowMs: number): TaskSpec[] {
  if (state.status !== 'open') return [];
  const { caseId, counselorId } = state.facts;
  const zone = state.policy.timeZone ?? DEFAULT_TIME_ZONE;
  const key = (name: string) => `${caseId}:wait:${name}`;
  const counselorTask = (kind: WaitKind, name: string, dueAt: string | null, detail: string): TaskSpec => ({
    key: key(name),
    kind,
    assigneeRole: 'counselor',
    assigneeId: counselorId,
    dueAt,
    detail,
  });
  const roleTask = (kind: WaitKind, role: Role, name: string, dueAt: string | null, detail: string): TaskSpec => ({
    key: key(name),
    kind,
    assigneeRole: role,
    assigneeId: null,
    dueAt,
    detail,
  });
  const waits: TaskSpec[] = [];
  const noticeDue = noticeDueDate(state.facts.lastDay, state.policy);
  const noticeDueAt = noticeDue ? iso(startOfLocalDay(addDays(noticeDue, 1), zone) - 1) : null;

  if (state.step === 'decision_review') {
    if (state.review.state === 'awaiting_review') {
      const since = state.openedOn ? startOfLocalDay(state.openedOn, zone) : nowMs;
      waits.push(
        roleTask(
          'review_decision',
          'clinical_director',
          `review:${state.review.rounds}`,
          iso(since + state.policy.reviewSlaHours * HOUR_MS),
          `review the decision (a director other than ${counselorId})`,
        ),
      );
    } else if (state.review.state === 'sent_back') {
      waits.push(
        counselorTask(
          'revise_decision',
          `revise:${state.review.rounds}`,
          null,
          'revise the decision that was sent back',
        ),
      );
    }
  }
  if (hasActiveRisk(state) && !riskGateOpen(state)) {
    waits.push(
      planCoversFlags(state)
        ? roleTask(
            'approve_safety_plan',
            'clinical_director',
            `approve-plan:${state.risk.flagCount}`,
            null,
            'approve the continuity/safety plan',
          )
        : counselorTask(
            'document_safety_plan',
            `document-plan:${state.risk.flagCount}`,
            null,
            'document a continuity/safety plan',
          ),
    );
  }
  if (state.step === 'client_conversation' && !clientTold(state)) {
    waits.push(
      counselorTask('hold_conversation', 'conversation', noticeDueAt, 'hold the ending conversation with the client'),
    );
    const last = state.conversation.outreach.at(-1);
    if (last) {
      const next = addDays(last.attemptedOn, state.policy.outreachSpacingDays);
      waits.push(
        counselorTask(
          'outreach_attempt',
          `outreach:${state.conversation.outreach.length + 1}`,
          iso(startOfLocalDay(next, zone)),
          `outreach attempt ${state.conversation.outreach.length + 1} of ${state.policy.outreachAttempts} is due`,
        ),
      );
    }
  }
  if (state.step === 'referral_handoff') {
    const referral = currentReferral(state);
    if (!referral && !(noReferralWanted(state) && !hasActiveRisk(state))) {
      waits.push(roleTask('propose_receiver', 'staff', 'propose', null, 'propose a receiving clinician or provider'));
    } else if (referral?.state === 'proposed' && referral.candidate.external) {
      const release = releaseFor(state.consents, {
        providerId: referral.candidate.providerId,
        providerName: referral.candidate.name,
        today: localDate(nowMs, zone),
        substanceUseRecords: state.facts.hasSubstanceUseRecords,
      });
      if (isBlocker(release)) {
        waits.push(
          roleTask(
            'record_release',
            'staff',
            `release:${referral.referralId}`,
            null,
            `record a release: ${release.detail}`,
          ),
        );
      }
    } else if (referral?.state === 'sent' && referral.sentAt) {
      waits.push(
        roleTask(
          'referral_answer',
          'staff',
          `answer:${referral.referralId}`,
          iso(Date.parse(referral.sentAt) + state.policy.referralSlaDays * DAY_MS),
          `record ${referral.candidate.name}'s answer to the referral`,
        ),
      );
    } else if (referral && (referral.state === 'accepted' || referral.state === 'no_show')) {
      waits.push(
        roleTask(
          'schedule_first_appointment',
          'staff',
          `schedule:${referral.referralId}:${referral.history.length}`,
          null,
          `schedule the first appointment with ${referral.candidate.name}`,
        ),
      );
    }
  }
  const scheduled = state.referrals.find((r) => r.state === 'first_appointment_scheduled' && r.appointmentAt);
  if (scheduled && !state.followUp.engaged) {
    waits.push(
      roleTask(
        'record_first_appointment',
        'staff',
        `kept:${scheduled.referralId}`,
        scheduled.appointmentAt,
        `record whether the first appointment with ${scheduled.candidate.name} was kept`,
      ),
    );
  }
  state.escalations.forEach((e, index) => {
    if (!escalationStands(state, e.kind)) return;
    waits.push({
      key: `${caseId}:escalation:${index + 1}:${e.kind}`,
      kind: `escalation.${e.kind}`,
      assigneeRole: 'clinical_director',
      assigneeId: null,
      dueAt: e.at,
      detail: `escalated (${e.kind.replace(/_/g, ' ')}, level ${e.level})`,
      level: e.level,
    });
  });
  return waits;
}
