import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { UpdateDefinition } from '@temporalio/common';
import type { Activities, OpeningProposal, TransitionInput } from '../activities';
import type { Actor } from '../domain/case';
import { NON_RETRYABLE_FAILURES } from '../domain/errors';
import {
  type CaseInput,
  type CaseProcessState,
  type Candidate,
  type ClientChoice,
  type Consent,
  type ContactChannel,
  type Escalation,
  type FollowUpPlan,
  type Referral,
  type ReferralState,
  type RiskFlag,
  caseContact,
  currentReferral,
  followUpPlan,
  openedState,
  requireCounselorOrDirector,
  requireOpen,
  requireRole,
  requireStep,
} from '../domain/process';
import { noReferralWanted, clientDeclinedServices } from '../domain/rules/client-autonomy';
import { isBlocker, releaseFor } from '../domain/rules/consent-before-disclosure';
import { noticeDueDate, noticeWarningDate } from '../domain/rules/deadlines';
import { agencyToday, explain } from '../domain/rules/explain';
import { checkNotNonPaymentAtRisk, checkOutreachSpacing, checkWaiver } from '../domain/rules/no-abandonment';
import { checkApprovalHasPlan, hasActiveRisk, mayClose, planCoversFlags } from '../domain/rules/risk-first';
import { type Blocker, RULES, RuleRefusal } from '../domain/rules/rule';
import { checkOutreachChannel, letterRoute, sameRouting } from '../domain/rules/safe-contact';
import { checkNotTheCounselor } from '../domain/rules/separation-of-duties';
import { DEFAULT_TIME_ZONE, addDays, startOfLocalDay } from '../domain/time';
import { CaseStatusKey, CaseStepKey, CounselorIdKey, TransferIdKey } from './search-attributes';

const {
  loadPolicy,
  openCase,
  openCaseFromRecord,
  readCaseFacts,
  recordTransition,
  sendReferral,
  issueClosureLetter,
  createTask,
} = proxyActivities<Activities>({
  // Each is a few queries (the letter a page of PDF): a worker killed mid-activity is noticed, and its work taken
  // up by another, within this time; retries stay close together so an outage's end is found within a minute.
  startToCloseTimeout: '15 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: NON_RETRYABLE_FAILURES,
  },
});

export type { CaseInput } from '../domain/process';

export interface CaseResult {
  caseId: string;
  status: CaseProcessState['status'];
}

/** What every action answers with, and what the status query returns. */
export interface CaseSnapshot {
  caseId: string;
  status: CaseProcessState['status'];
  step: CaseProcessState['step'];
  waitingFor: string[];
  blockers: Blocker[];
  state: CaseProcessState;
}

/** Every human action carries who took it and the request it came in. */
export interface ActionBase {
  actor: Actor;
  requestId: string | null;
  /**
   * The caller's id for this action (the API sends its Idempotency-Key): the same action delivered twice, as a
   * retried HTTP call after a timeout, is applied once and answered with the case as it then stands.
   */
  actionId?: string | null;
}
export type Action<T = object> = ActionBase & T;

export const caseSnapshotQuery = defineQuery<CaseSnapshot>('caseSnapshot');

export const reviewDecisionUpdate = defineUpdate<
  CaseSnapshot,
  [Action<{ decision: 'approve' | 'reject' | 'send_back'; rationale: string }>]
>('reviewDecision');
export const reviseDecisionUpdate = defineUpdate<CaseSnapshot, [Action<{ rationale: string }>]>('reviseDecision');
export const recordSafetyPlanUpdate = defineUpdate<CaseSnapshot, [Action<{ documentRef: string }>]>('recordSafetyPlan');
export const approveSafetyPlanUpdate = defineUpdate<CaseSnapshot, [Action]>('approveSafetyPlan');
export const raiseRiskFlagUpdate = defineUpdate<CaseSnapshot, [Action<{ flag: RiskFlag }>]>('raiseRiskFlag');
export const recordConversationUpdate = defineUpdate<
  CaseSnapshot,
  [Action<{ heldOn: string; clientChoice: ClientChoice; lastSessionDate: string }>]
>('recordConversation');
export const recordOutreachAttemptUpdate = defineUpdate<
  CaseSnapshot,
  [Action<{ attemptedOn: string; channel: ContactChannel }>]
>('recordOutreachAttempt');
export const waiveConversationUpdate = defineUpdate<
  CaseSnapshot,
  [Action<{ basis: 'client_initiated' | 'clinician_safety'; rationale: string }>]
>('waiveConversation');
export const proposeReferralUpdate = defineUpdate<
  CaseSnapshot,
  [Action<{ candidates: Candidate[]; replace?: boolean }>]
>('proposeReferral');
export const recordReferralResponseUpdate = defineUpdate<
  CaseSnapshot,
  [
    Action<{
      referralId: string;
      response: 'accepted' | 'declined';
      declinedBy?: 'provider' | 'client';
      declineReason?: string;
    }>,
  ]
>('recordReferralResponse');
export const scheduleFirstAppointmentUpdate = defineUpdate<
  CaseSnapshot,
  [Action<{ referralId: string; scheduledFor: string }>]
>('scheduleFirstAppointment');
export const recordAppointmentOutcomeUpdate = defineUpdate<
  CaseSnapshot,
  [Action<{ referralId: string; outcome: 'kept' | 'no_show' }>]
>('recordAppointmentOutcome');
export const withdrawReferralUpdate = defineUpdate<CaseSnapshot, [Action<{ referralId: string; reason: string }>]>(
  'withdrawReferral',
);
export const recordConsentUpdate = defineUpdate<
  CaseSnapshot,
  [Action<Omit<Consent, 'revokedAt' | 'consentId'> & { consentId?: string }>]
>('recordConsent');
export const revokeConsentUpdate = defineUpdate<CaseSnapshot, [Action<{ consentId: string }>]>('revokeConsent');
export const recordEngagementUpdate = defineUpdate<CaseSnapshot, [Action<{ engaged: boolean }>]>('recordEngagement');
export const cancelCaseUpdate = defineUpdate<CaseSnapshot, [Action<{ reason: string }>]>('cancelCase');
/** The client record changed: the case re-reads its facts from it. Carries nothing, so history holds no facts twice. */
export const clientRecordChangedSignal = defineSignal<[{ requestId: string | null }]>('clientRecordChanged');
/** The same, answered with the case once its facts are current (for the request that changed the record). */
export const refreshFactsUpdate = defineUpdate<CaseSnapshot, [Action]>('refreshFacts');

/** Marks the workflow code that reads the client's facts from the record (cases started before take them from input). */
export const FACTS_FROM_RECORD = 'facts-from-record';
/**
 * Marks follow-up as care: due on the agency's days (closing date + offset, not closing instant + offset × 24 h),
 * with caring contacts for a client who carried a suicide-risk flag.
 */
export const FOLLOW_UP_AS_CARE = 'follow-up-as-care';
/** Marks the cap on review reminders: three escalations, after which the open ones stand until the review. */
export const REVIEW_ESCALATION_CAP = 'review-escalation-cap';
/**
 * Marks follow-up in a fresh run: the months of follow-up and caring contacts continue as new, carrying the case,
 * so a long case's history stays bounded (and continues as new again should signals grow it).
 */
export const FOLLOW_UP_CONTINUES_AS_NEW = 'follow-up-continues-as-new';

/** How many review escalations a case raises before it lets the open ones stand. */
export const REVIEW_ESCALATIONS_MAX = 3;
/** How many action ids a case remembers (the newest), so a retried action is applied once. */
const REMEMBERED_ACTIONS = 500;
/**
 * Marks the closure letter waiting until the change that let the case close (an approval, a record update) is in
 * the audit trail: before it, the letter could be generated, and chained, ahead of the approval that allowed it.
 */
export const LETTER_AFTER_ITS_REASONS = 'letter-after-its-reasons';
/** Marks a consent's revocation withdrawing only the referrals that stood when it came, not one proposed meanwhile. */
export const REVOCATION_WITHDRAWS_WHAT_STOOD = 'revocation-withdraws-what-stood';
/**
 * Marks a case holding no contact address: the record's facts come without them (the activities that write to the
 * client read the record), so a change of address alone is no change to the case, and a case that read its facts
 * before drops its addresses at its next re-read.
 */
export const CONTACT_WITHOUT_ADDRESSES = 'contact-without-addresses';
/**
 * Marks a transfer's case recording its proposed receivers in the activity that opens it: the case row, its
 * opening and its proposal in one transaction (they were two activities, two transactions and a workflow task more).
 */
export const OPENING_HOLDS_PROPOSAL = 'opening-holds-proposal';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

function nowIso(): string {
  return new Date(Date.now()).toISOString();
}

/** Validators refuse with a typed failure: the API answers "refused: rule X, because Y" at once. */
function guard(check: () => void): void {
  try {
    check();
  } catch (error) {
    if (error instanceof RuleRefusal) {
      const type =
        error.rule === RULES.step
          ? 'Conflict'
          : error.rule === 'invalid_input'
            ? 'InvalidInput'
            : error.rule === 'not_found'
              ? 'NotFound'
              : 'RuleViolation';
      throw ApplicationFailure.create({
        type,
        message: error.message,
        nonRetryable: true,
        details: [{ rule: error.rule }],
      });
    }
    throw error;
  }
}

function invalid(message: string): never {
  throw new RuleRefusal('invalid_input', message);
}

function notFound(message: string): never {
  throw new RuleRefusal('not_found', message);
}

/** One client's termination or transfer, from decision review to follow-up. */
export async function caseWorkflow(input: CaseInput): Promise<CaseResult> {
  const state: CaseProcessState = input.resume?.state ?? {
    facts: {
      caseId: input.caseId,
      agencyId: input.agencyId,
      clientId: input.clientId,
      counselorId: input.counselorId ?? '',
      kind: input.kind,
      reason: input.reason,
      lastDay: input.lastDay ?? null,
      riskFlags: [...(input.riskFlags ?? [])],
      contact: input.contact ?? { channels: [], noContactAtHome: false },
      hasSubstanceUseRecords: input.hasSubstanceUseRecords ?? false,
    },
    policy: {
      reviewSlaHours: 0,
      outreachAttempts: 0,
      outreachSpacingDays: 0,
      noticeDays: 0,
      noticeWarningDays: 0,
      referralSlaDays: 0,
      rerouteLimit: 0,
      followUpOffsetsDays: [],
    },
    status: 'opening',
    step: 'opening',
    review: { state: 'awaiting_review', rounds: 0, lastRationale: null, approvedBy: null },
    risk: {
      flagCount: (input.riskFlags ?? []).length,
      safetyPlanAt: null,
      safetyPlanRef: null,
      planCoversFlags: 0,
      approvalCoversFlags: 0,
      approvedBy: null,
    },
    conversation: {
      heldOn: null,
      clientChoice: null,
      lastSessionDate: null,
      outreach: [],
      precludedBy: null,
      informedInTime: null,
    },
    referrals: [],
    reroutes: 0,
    consents: [],
    letter: null,
    followUp: { engaged: false, checks: [] },
    escalations: [],
    cancellation: null,
  };
  const { caseId, clientId } = state.facts;
  const candidateQueue: Candidate[] = [];
  /** Bumped on every change, so a waiting loop can wake on "anything happened". */
  let version = 0;
  let eventSeq = input.resume?.eventSeq ?? 0;
  /** Action ids applied (in order, newest last) and those being applied now. */
  const applied: string[] = [...(input.resume?.actionIds ?? [])];
  const appliedSet = new Set(applied);
  const applying = new Set<string>();
  /** Transitions being written right now (a handler's, the process's). */
  let recording = 0;

  /** The agency's date now, and the instant one of its days begins. */
  const today = (): string => agencyToday(state, Date.now());
  const msUntil = (isoDate: string): number =>
    Math.max(1, startOfLocalDay(isoDate, state.policy.timeZone ?? DEFAULT_TIME_ZONE) - Date.now());

  const snapshot = (): CaseSnapshot => ({
    caseId,
    status: state.status,
    step: state.step,
    ...explain(state, today()),
    state,
  });

  /** Writes the read model and one audit event; the key makes a retried write a no-op. */
  const record = async (
    action: string,
    actor: Actor | null,
    requestId: string | null,
    extra: Partial<Pick<TransitionInput, 'after' | 'reason' | 'referral' | 'consent' | 'outcome'>> = {},
  ): Promise<void> => {
    eventSeq++;
    recording++;
    try {
      await recordTransition({
        caseId,
        clientId,
        eventKey: `${caseId}:${eventSeq}:${action}`,
        seq: eventSeq,
        action,
        actor: actor ?? { id: 'system', role: 'system' },
        requestId,
        status: state.status,
        step: state.step,
        state,
        ...extra,
      });
    } finally {
      recording--;
    }
    // Waiters wake only once the change is in PostgreSQL, so the activities they run can see it.
    version++;
  };

  const setStep = async (step: CaseProcessState['step'], actor: Actor | null = null): Promise<void> => {
    state.step = step;
    upsertSearchAttributes([
      { key: CaseStepKey, value: step },
      { key: CaseStatusKey, value: state.status },
    ]);
    await record(`case.step.${step}`, actor, null);
  };

  const escalate = async (kind: Escalation['kind'], level: number, detail: string): Promise<void> => {
    const escalation = { kind, at: nowIso(), level };
    state.escalations.push(escalation);
    await createTask({
      taskKey: `${caseId}:escalation:${state.escalations.length}:${kind}`,
      caseId,
      kind: `escalation.${kind}`,
      assigneeRole: 'clinical_director',
      assigneeId: null,
      detail,
    });
    await record(`case.escalated.${kind}`, null, null, { after: escalation, reason: detail });
  };

  // ---- queries and updates -------------------------------------------------------------------

  setHandler(caseSnapshotQuery, snapshot);

  /** An update: the validator refuses at once with the rule; the handler records and answers the snapshot. */
  const action = <T extends ActionBase>(
    def: UpdateDefinition<CaseSnapshot, [T]>,
    validate: (request: T) => void,
    handle: (request: T) => Promise<void>,
  ): void => {
    const seen = (request: T): boolean =>
      !!request.actionId && (appliedSet.has(request.actionId) || applying.has(request.actionId));
    setHandler(
      def,
      async (request: T) => {
        const actionId = request.actionId;
        if (actionId && seen(request)) {
          // Delivered again (a retried call): answered with the case as it stands once the first has been applied.
          await condition(() => !applying.has(actionId));
          return snapshot();
        }
        if (actionId) applying.add(actionId);
        try {
          if (state.status === 'opening') {
            // Accepted while the case was still reading its record: checked once it has its facts.
            await condition(() => state.status !== 'opening');
            guard(() => validate(request));
          }
          await handle(request);
          if (actionId) {
            applied.push(actionId);
            appliedSet.add(actionId);
            if (applied.length > REMEMBERED_ACTIONS) appliedSet.delete(applied.shift()!);
          }
        } finally {
          if (actionId) applying.delete(actionId);
        }
        return snapshot();
      },
      {
        // Before the facts are read there is nothing to check them against; the handler checks after. An action
        // already applied is not checked again: it is answered, not repeated.
        validator: (request: T) => {
          if (state.status !== 'opening' && !seen(request)) guard(() => validate(request));
        },
      },
    );
  };

  action(
    reviewDecisionUpdate,
    (r) => {
      requireStep(state, ['decision_review'], 'a decision review');
      requireRole(r.actor, 'reviewDecision', 'reviewing a decision');
      checkNotTheCounselor(state.facts.counselorId, r.actor, 'review its decision');
      if (state.review.state !== 'awaiting_review')
        throw new RuleRefusal(RULES.step, "the decision was sent back and awaits the counselor's revision");
      if (!r.rationale.trim()) invalid('a review needs a rationale');
      if (r.decision === 'approve') {
        checkApprovalHasPlan(state);
        checkNotNonPaymentAtRisk(state);
      }
    },
    async (r) => {
      state.review.rounds++;
      state.review.lastRationale = r.rationale;
      if (r.decision === 'approve') {
        state.review.state = 'approved';
        state.review.approvedBy = r.actor.id;
        if (hasActiveRisk(state)) {
          // Approving a risk-flagged decision is the director's explicit approval of its safety plan.
          state.risk.approvalCoversFlags = state.risk.planCoversFlags;
          state.risk.approvedBy = r.actor.id;
        }
      } else if (r.decision === 'reject') {
        state.review.state = 'rejected';
      } else {
        state.review.state = 'sent_back';
      }
      await record(
        `decision.${r.decision === 'approve' ? 'approved' : r.decision === 'reject' ? 'rejected' : 'sent_back'}`,
        r.actor,
        r.requestId,
        { reason: r.rationale },
      );
    },
  );

  action(
    reviseDecisionUpdate,
    (r) => {
      requireStep(state, ['decision_review'], 'revising the decision');
      requireRole(r.actor, 'reviseDecision', 'revising the decision');
      requireCounselorOrDirector(state, r.actor, 'revising the decision');
      if (state.review.state !== 'sent_back') throw new RuleRefusal(RULES.step, 'the decision was not sent back');
      if (!r.rationale.trim()) invalid('a revision needs a rationale');
    },
    async (r) => {
      state.review.state = 'awaiting_review';
      state.review.lastRationale = r.rationale;
      await record('decision.revised', r.actor, r.requestId, { reason: r.rationale });
    },
  );

  action(
    recordSafetyPlanUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'recordSafetyPlan', 'documenting a safety plan');
      requireCounselorOrDirector(state, r.actor, 'documenting a safety plan');
      if (!r.documentRef.trim()) invalid('a safety plan needs a reference to where it is documented');
    },
    async (r) => {
      state.risk.safetyPlanAt = nowIso();
      state.risk.safetyPlanRef = r.documentRef;
      state.risk.planCoversFlags = state.risk.flagCount;
      await record('risk.safety_plan_documented', r.actor, r.requestId, { after: { documentRef: r.documentRef } });
    },
  );

  action(
    approveSafetyPlanUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'approveSafetyPlan', 'approving a safety plan');
      checkNotTheCounselor(state.facts.counselorId, r.actor, 'approve its safety plan');
      if (!hasActiveRisk(state)) throw new RuleRefusal(RULES.step, 'the case carries no risk flag');
      if (!planCoversFlags(state)) {
        throw new RuleRefusal(RULES.riskFirst, 'no safety plan has been documented since the latest risk flag');
      }
    },
    async (r) => {
      state.risk.approvalCoversFlags = state.risk.planCoversFlags;
      state.risk.approvedBy = r.actor.id;
      await record('risk.safety_plan_approved', r.actor, r.requestId);
    },
  );

  action(
    raiseRiskFlagUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'raiseRiskFlag', 'raising a risk flag');
    },
    async (r) => {
      if (!state.facts.riskFlags.includes(r.flag)) state.facts.riskFlags.push(r.flag);
      // A new flag needs a new plan and a new approval before the case may close.
      state.risk.flagCount++;
      await record('risk.flag_raised', r.actor, r.requestId, { after: { flag: r.flag } });
    },
  );

  action(
    recordConversationUpdate,
    (r) => {
      requireStep(state, ['client_conversation'], 'recording the ending conversation');
      requireRole(r.actor, 'recordConversation', 'recording the ending conversation');
      requireCounselorOrDirector(state, r.actor, 'recording the ending conversation');
      if (r.heldOn > today()) invalid(`the conversation cannot be recorded as held on a future date (${r.heldOn})`);
      if (r.lastSessionDate < r.heldOn) invalid('the last session cannot be before the ending conversation');
    },
    async (r) => {
      state.conversation.heldOn = r.heldOn;
      state.conversation.clientChoice = r.clientChoice;
      state.conversation.lastSessionDate = r.lastSessionDate;
      const due = noticeDueDate(state.facts.lastDay, state.policy);
      state.conversation.informedInTime = due ? r.heldOn <= due : true;
      await record('conversation.held', r.actor, r.requestId, {
        after: { heldOn: r.heldOn, clientChoice: r.clientChoice, informedInTime: state.conversation.informedInTime },
      });
    },
  );

  action(
    recordOutreachAttemptUpdate,
    (r) => {
      requireStep(state, ['client_conversation'], 'recording an outreach attempt');
      requireRole(r.actor, 'recordOutreachAttempt', 'recording an outreach attempt');
      requireCounselorOrDirector(state, r.actor, 'recording an outreach attempt');
      if (r.attemptedOn > today()) invalid(`an outreach attempt cannot be in the future (today is ${today()})`);
      if (state.openedOn && r.attemptedOn < state.openedOn)
        invalid(`an outreach attempt cannot be dated before the case opened (${state.openedOn})`);
      checkOutreachChannel(state.facts, r.channel);
      checkOutreachSpacing(state, r.attemptedOn);
    },
    async (r) => {
      state.conversation.outreach.push({ attemptedOn: r.attemptedOn, channel: r.channel });
      await record('conversation.outreach_attempted', r.actor, r.requestId, {
        after: { attempt: state.conversation.outreach.length, of: state.policy.outreachAttempts, channel: r.channel },
      });
      if (state.conversation.outreach.length >= state.policy.outreachAttempts) {
        state.conversation.precludedBy = 'outreach_exhausted';
        await record('conversation.precluded', null, null, {
          reason: `the client did not respond to ${state.conversation.outreach.length} documented outreach attempts`,
        });
      }
    },
  );

  action(
    waiveConversationUpdate,
    (r) => {
      requireStep(state, ['client_conversation'], 'going on without the conversation');
      requireRole(r.actor, 'waiveConversation', 'going on without the ending conversation');
      checkNotTheCounselor(state.facts.counselorId, r.actor, 'waive its ending conversation');
      checkWaiver(state, r.basis);
      if (!r.rationale.trim()) invalid('going on without the conversation needs a rationale');
    },
    async (r) => {
      state.conversation.precludedBy = r.basis;
      await record('conversation.precluded', r.actor, r.requestId, { reason: r.rationale, after: { basis: r.basis } });
    },
  );

  action(
    proposeReferralUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'proposeReferral', 'proposing a referral');
      if (r.actor.role === 'counselor' && r.actor.id !== state.facts.counselorId)
        throw new RuleRefusal(RULES.role, "only the case's own counselor may propose its referral");
      if (r.candidates.length === 0) invalid('propose at least one candidate');
      if (state.step === 'follow_up' || state.step === 'done')
        throw new RuleRefusal(RULES.step, 'the handoff is complete');
      if (r.replace && r.actor.role !== 'clinical_director')
        throw new RuleRefusal(RULES.role, 'overriding a proposal is for a clinical director');
    },
    async (r) => {
      if (r.replace) {
        // A director's override: earlier proposals go, and an unanswered referral is withdrawn.
        candidateQueue.length = 0;
        for (const referral of state.referrals) {
          if (referral.state === 'proposed' || referral.state === 'sent') {
            await moveReferral(
              referral,
              'withdrawn',
              r.actor,
              r.requestId,
              'proposal overridden by a clinical director',
            );
          }
        }
      }
      candidateQueue.push(...r.candidates);
      await record('referral.candidates_proposed', r.actor, r.requestId, {
        after: { providers: r.candidates.map((c) => c.providerId) },
      });
    },
  );

  const findReferral = (referralId: string, states: ReferralState[], what: string): Referral => {
    const referral = state.referrals.find((x) => x.referralId === referralId);
    if (!referral) notFound(`no referral ${referralId} on this case`);
    if (!states.includes(referral.state))
      throw new RuleRefusal(RULES.step, `${what} is not possible: the referral is ${referral.state}`);
    return referral;
  };
  const moveReferral = async (
    referral: Referral,
    next: ReferralState,
    actor: Actor | null,
    requestId: string | null,
    reason?: string,
  ) => {
    referral.state = next;
    referral.history.push({ state: next, at: nowIso(), ...(reason ? { reason } : {}) });
    await record(`referral.${next}`, actor, requestId, { referral, ...(reason ? { reason } : {}) });
  };

  action(
    recordReferralResponseUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'recordReferralResponse', 'recording a referral response');
      findReferral(r.referralId, ['sent'], 'a response');
      if (r.response === 'declined' && !r.declineReason?.trim()) invalid('a decline needs a reason');
    },
    async (r) => {
      const referral = findReferral(r.referralId, ['sent'], 'a response');
      const reason = r.response === 'declined' ? `${r.declinedBy ?? 'provider'}: ${r.declineReason}` : undefined;
      await moveReferral(referral, r.response, r.actor, r.requestId, reason);
    },
  );

  action(
    scheduleFirstAppointmentUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'scheduleFirstAppointment', 'scheduling the first appointment');
      findReferral(r.referralId, ['accepted', 'no_show'], 'scheduling');
    },
    async (r) => {
      const referral = findReferral(r.referralId, ['accepted', 'no_show'], 'scheduling');
      referral.appointmentAt = r.scheduledFor;
      await moveReferral(referral, 'first_appointment_scheduled', r.actor, r.requestId);
    },
  );

  action(
    recordAppointmentOutcomeUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'recordAppointmentOutcome', 'recording the first appointment');
      findReferral(r.referralId, ['first_appointment_scheduled'], 'recording the first appointment');
    },
    async (r) => {
      const referral = findReferral(r.referralId, ['first_appointment_scheduled'], 'recording the first appointment');
      if (r.outcome === 'kept') state.followUp.engaged = true;
      await moveReferral(referral, r.outcome === 'kept' ? 'first_appointment_kept' : 'no_show', r.actor, r.requestId);
      if (r.outcome === 'no_show') {
        await createTask({
          taskKey: `${caseId}:${referral.referralId}:no_show`,
          caseId,
          kind: 'outreach.first_appointment_no_show',
          assigneeRole: 'counselor',
          assigneeId: state.facts.counselorId,
          detail: 'the client missed the first appointment with the receiving provider: reach out and reschedule',
        });
      }
    },
  );

  action(
    withdrawReferralUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'withdrawReferral', 'withdrawing a referral');
      findReferral(r.referralId, ['proposed', 'sent', 'accepted'], 'withdrawing');
      if (!r.reason.trim()) invalid('a withdrawal needs a reason');
    },
    async (r) => {
      await moveReferral(
        findReferral(r.referralId, ['proposed', 'sent', 'accepted'], 'withdrawing'),
        'withdrawn',
        r.actor,
        r.requestId,
        r.reason,
      );
    },
  );

  action(
    recordConsentUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'recordConsent', 'recording a consent');
      if (r.expiresOn < today()) invalid(`the release expired on ${r.expiresOn}`);
      if (r.signedOn > today()) invalid('the release cannot be signed in the future');
      if (r.consentId && state.consents.some((c) => c.consentId === r.consentId))
        throw new RuleRefusal(RULES.step, `consent ${r.consentId} is already recorded`);
    },
    async (r) => {
      const { actor, requestId, ...fields } = r;
      const consent: Consent = { ...fields, consentId: fields.consentId ?? uuid4(), revokedAt: null };
      state.consents.push(consent);
      await record('consent.recorded', actor, requestId, {
        consent,
        after: { consentId: consent.consentId, recipient: consent.recipientProviderId },
      });
    },
  );

  action(
    revokeConsentUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'revokeConsent', 'recording a revocation');
      const consent = state.consents.find((c) => c.consentId === r.consentId);
      if (!consent) notFound(`no consent ${r.consentId} on this case`);
      if (consent.revokedAt) throw new RuleRefusal(RULES.step, 'the consent is already revoked');
    },
    async (r) => {
      const consent = state.consents.find((c) => c.consentId === r.consentId)!;
      consent.revokedAt = nowIso();
      await record('consent.revoked', r.actor, r.requestId, { consent });
      // A revocation stops the handoff to that provider, wherever it stands: the referrals that stood when it came.
      // (Iterating the live list also withdrew a referral the process proposed meanwhile, from the next candidate,
      // which then awaits a new release: a race, fixed for cases from here on.)
      const standing = patched(REVOCATION_WITHDRAWS_WHAT_STOOD) ? [...state.referrals] : state.referrals;
      for (const referral of standing) {
        const pending = ['proposed', 'sent', 'accepted', 'first_appointment_scheduled', 'no_show'].includes(
          referral.state,
        );
        if (pending && referral.candidate.providerId === consent.recipientProviderId && referral.candidate.external) {
          await moveReferral(referral, 'withdrawn', r.actor, r.requestId, 'consent revoked');
        }
      }
    },
  );

  action(
    recordEngagementUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'recordEngagement', 'recording engagement');
      requireCounselorOrDirector(state, r.actor, 'recording engagement');
    },
    async (r) => {
      state.followUp.engaged = r.engaged;
      await record('follow_up.engagement_recorded', r.actor, r.requestId, { after: { engaged: r.engaged } });
    },
  );

  let factsAsked = 0;
  let factsApplied = 0;
  /** Re-reads the client's facts from the agency's record; an older answer never overwrites a newer one. */
  const refreshFacts = async (actor: Actor | null, requestId: string | null): Promise<void> => {
    const asked = ++factsAsked;
    const fresh = await readCaseFacts({ agencyId: state.facts.agencyId, clientId });
    if (asked <= factsApplied || state.status !== 'open') return;
    factsApplied = asked;
    const { facts } = state;
    // Cases from here on hold no address: a new address alone changes nothing a case decides (older ones compared all).
    const withoutAddresses = patched(CONTACT_WITHOUT_ADDRESSES);
    const contactChanged = withoutAddresses
      ? !sameRouting(fresh.contact, facts.contact)
      : JSON.stringify(fresh.contact) !== JSON.stringify(facts.contact);
    const added = fresh.riskFlags.filter((f) => !facts.riskFlags.includes(f));
    const changed = [
      ...(fresh.counselorId !== facts.counselorId ? ['counselor'] : []),
      ...(added.length || fresh.riskFlags.length !== facts.riskFlags.length ? ['risk flags'] : []),
      ...(contactChanged ? ['contact preferences'] : []),
      ...(fresh.hasSubstanceUseRecords !== facts.hasSubstanceUseRecords ? ['substance-use records'] : []),
    ];
    if (withoutAddresses) facts.contact = caseContact(fresh.contact);
    if (changed.length === 0) return;
    facts.counselorId = fresh.counselorId;
    facts.riskFlags = [...fresh.riskFlags];
    facts.contact = fresh.contact;
    facts.hasSubstanceUseRecords = fresh.hasSubstanceUseRecords;
    // A new flag needs a new plan and a new approval before the case may close.
    if (added.length) state.risk.flagCount++;
    if (facts.riskFlags.includes('suicide_risk')) state.risk.carriedSuicideRisk = true;
    await record('case.facts_updated', actor, requestId, {
      reason: `the client record changed: ${changed.join(', ')}`,
      after: { changed, riskFlags: facts.riskFlags, counselorId: facts.counselorId },
    });
  };

  setHandler(clientRecordChangedSignal, async ({ requestId }) => {
    await condition(() => state.status !== 'opening');
    await refreshFacts(null, requestId);
  });
  action(
    refreshFactsUpdate,
    () => requireOpen(state),
    async (r) => refreshFacts(r.actor, r.requestId),
  );

  const main = new CancellationScope();
  action(
    cancelCaseUpdate,
    (r) => {
      requireOpen(state);
      requireRole(r.actor, 'cancelCase', 'cancelling a case');
      if (!r.reason.trim()) invalid('a cancellation needs a reason');
    },
    async (r) => {
      state.cancellation = { actor: r.actor, reason: r.reason, requestId: r.requestId };
      main.cancel();
      await condition(() => state.status === 'cancelled');
    },
  );

  // ---- the process -------------------------------------------------------------------------

  let proposal: OpeningProposal | undefined;
  if (input.resume) {
    // A case continued as new: its facts, policy and progress came with it; nothing is opened again.
  } else if (patched(FACTS_FROM_RECORD)) {
    // The client's facts come from the agency's record, read as the case row is written (one activity), and a
    // transfer's proposed receivers are recorded in the same transaction.
    const proposed = input.proposedCandidates ?? [];
    if (proposed.length > 0 && patched(OPENING_HOLDS_PROPOSAL)) {
      eventSeq++;
      proposal = {
        eventKey: `${caseId}:${eventSeq}:referral.candidates_proposed`,
        seq: eventSeq,
        providers: proposed.map((c) => c.providerId),
      };
    }
    const opened = await openCaseFromRecord({
      ...(proposal ? { proposal } : {}),
      caseId,
      agencyId: input.agencyId,
      clientId,
      kind: input.kind,
      reason: input.reason,
      lastDay: state.facts.lastDay,
      transferId: input.transferId ?? null,
      openedBy: input.openedBy,
      requestId: input.requestId,
      state,
    });
    Object.assign(state, openedState(state, opened));
  } else {
    state.policy = await loadPolicy({ agencyId: state.facts.agencyId });
    // Open for actions from here on: one that arrives before the row is written waits (its write retries).
    state.status = 'open';
    state.step = 'decision_review';
    await openCase({
      ...input,
      counselorId: state.facts.counselorId,
      lastDay: state.facts.lastDay,
      riskFlags: state.facts.riskFlags,
      contact: state.facts.contact,
      hasSubstanceUseRecords: state.facts.hasSubstanceUseRecords,
      noticeDue: noticeDueDate(state.facts.lastDay, state.policy),
      state,
    });
  }
  if (input.proposedCandidates?.length && !input.resume) {
    candidateQueue.push(...input.proposedCandidates);
    if (!proposal) {
      await record('referral.candidates_proposed', null, null, {
        after: { providers: input.proposedCandidates.map((c) => c.providerId) },
      });
    }
  }
  upsertSearchAttributes([
    { key: CaseStatusKey, value: 'open' },
    { key: CaseStepKey, value: state.step },
    { key: CounselorIdKey, value: state.facts.counselorId },
    ...(input.transferId ? [{ key: TransferIdKey, value: input.transferId }] : []),
  ]);
  version++;

  try {
    // The deadline watcher ends by itself once the client is told or the case ends.
    await main.run(() => Promise.all([watchNoticeDeadline(), runSteps()]));
  } catch (error) {
    if (!isCancellation(error)) throw error;
    // Cancelled from Temporal itself (CLI, UI): recorded as the system's act, so the read model ends too.
    state.cancellation ??= { actor: null, reason: 'the workflow was cancelled from Temporal', requestId: null };
    await CancellationScope.nonCancellable(async () => {
      state.status = 'cancelled';
      state.step = 'done';
      upsertSearchAttributes([
        { key: CaseStatusKey, value: 'cancelled' },
        { key: CaseStepKey, value: 'done' },
      ]);
      const { actor, reason, requestId } = state.cancellation!;
      await record('case.cancelled', actor, requestId, { reason });
    });
  }
  await condition(allHandlersFinished);
  return { caseId, status: state.status };

  async function runSteps(): Promise<void> {
    if (input.resume) {
      await followUpFrom(state.followUp.schedule ?? [], true);
      return closeCase();
    }
    if (!(await decisionReview())) return;
    await clientConversation();
    await referralHandoff();
    await closureLetter();
    await followUp();
    return closeCase();
  }

  async function closeCase(): Promise<void> {
    state.status = 'closed';
    await setStep('done');
  }

  async function decisionReview(): Promise<boolean> {
    let overdue = 0;
    let capped: boolean | undefined;
    while (state.review.state !== 'approved' && state.review.state !== 'rejected') {
      if (state.review.state === 'sent_back') {
        await condition(() => state.review.state !== 'sent_back');
        overdue = 0;
        continue;
      }
      // After the last reminder the open escalations stand in the directors' queues until the review happens: a case
      // left for months keeps a bounded history instead of a reminder every SLA period.
      if (overdue >= REVIEW_ESCALATIONS_MAX && (capped ??= patched(REVIEW_ESCALATION_CAP))) {
        await condition(() => state.review.state !== 'awaiting_review');
        continue;
      }
      const reviewed = await condition(
        () => state.review.state !== 'awaiting_review',
        state.policy.reviewSlaHours * HOUR_MS,
      );
      if (!reviewed) {
        overdue++;
        // First a reminder to the agency's directors, then, every further SLA period, a second director.
        await escalate(
          'review_overdue',
          overdue,
          overdue === 1
            ? 'the decision review is past its SLA'
            : `the decision review is ${overdue} SLA periods late: assign a second director`,
        );
      }
    }
    if (state.review.state === 'rejected') {
      state.status = 'rejected';
      await setStep('done');
      return false;
    }
    return true;
  }

  async function clientConversation(): Promise<void> {
    await setStep('client_conversation');
    await condition(() => state.conversation.heldOn !== null || state.conversation.precludedBy !== null);
  }

  async function watchNoticeDeadline(): Promise<void> {
    const due = noticeDueDate(state.facts.lastDay, state.policy);
    if (!due) return;
    const told = () =>
      state.conversation.heldOn !== null || state.conversation.precludedBy !== null || state.status !== 'open';
    const warnOn = noticeWarningDate(due, state.policy);
    if (!(await condition(told, msUntil(warnOn)))) {
      await escalate(
        'notice_at_risk',
        1,
        `the client has not been told yet and must be by ${due}, ${state.policy.noticeDays} days before the counselor's last day`,
      );
    }
    // Missed once the agency's day after the due date begins.
    if (!(await condition(told, msUntil(addDays(due, 1))))) {
      await escalate(
        'notice_missed',
        1,
        `the client was not told by ${due}, ${state.policy.noticeDays} days before the counselor's last day`,
      );
    }
  }

  async function referralHandoff(): Promise<void> {
    if (noReferralWanted(state) && !hasActiveRisk(state)) {
      // Client autonomy (or a client who could not be reached): recorded, and the process goes on.
      await record('referral.skipped', null, null, {
        reason: clientDeclinedServices(state)
          ? 'the client declined further services'
          : 'the client could not be reached to choose a referral; the letter lists other resources',
      });
      return;
    }
    await setStep('referral_handoff');
    if (noReferralWanted(state)) {
      await escalate(
        'risk_client_declined',
        1,
        'a client at risk declined or could not be reached: a receiving provider must accept before the case may close',
      );
    }
    let limitEscalations = 0;
    for (;;) {
      const referral = currentReferral(state);
      if (referral && (referral.state === 'first_appointment_scheduled' || referral.state === 'first_appointment_kept'))
        return;
      if (!referral) {
        const next = candidateQueue.shift();
        if (!next) {
          const seen = version;
          await condition(() => candidateQueue.length > 0 || version !== seen);
          continue;
        }
        const previous = state.referrals.filter((r) => ['declined', 'expired', 'withdrawn'].includes(r.state));
        const fresh: Referral = {
          referralId: uuid4(),
          candidate: next,
          state: 'proposed',
          history: [{ state: 'proposed', at: nowIso() }],
          sentAt: null,
          consentId: null,
          appointmentAt: null,
        };
        if (previous.length > 0) {
          const last = previous.at(-1)!;
          if (last.state === 'declined' || last.state === 'expired') {
            state.reroutes++;
            await moveReferral(last, 're_routed', null, null, `re-routed to ${next.providerId}`);
          }
        }
        state.referrals.push(fresh);
        await record('referral.proposed', null, null, { referral: fresh });
        if (state.reroutes >= state.policy.rerouteLimit && limitEscalations < state.reroutes) {
          limitEscalations = state.reroutes;
          await escalate(
            'referral_reroute_limit',
            state.reroutes,
            `the referral has been re-routed ${state.reroutes} times (limit ${state.policy.rerouteLimit})`,
          );
        }
        continue;
      }
      if (referral.state === 'proposed') {
        let consentId: string | null = null;
        if (referral.candidate.external) {
          const release = releaseFor(state.consents, {
            providerId: referral.candidate.providerId,
            providerName: referral.candidate.name,
            today: today(),
            substanceUseRecords: state.facts.hasSubstanceUseRecords,
          });
          if (isBlocker(release)) {
            // Consent before disclosure: nothing goes out until a valid release names this provider
            // (the case's blockers say which release is missing).
            const seen = version;
            await condition(() => version !== seen);
            continue;
          }
          consentId = release.consentId;
        }
        const seen = version;
        try {
          // Once a disclosure starts it finishes and is recorded, even if the case is cancelled meanwhile.
          await CancellationScope.nonCancellable(() =>
            sendReferral({
              caseId,
              agencyId: state.facts.agencyId,
              clientId,
              referralId: referral.referralId,
              providerId: referral.candidate.providerId,
              external: referral.candidate.external,
              consentId,
              substanceUseRecords: state.facts.hasSubstanceUseRecords,
            }),
          );
        } catch (error) {
          // The activity re-checks consent at the moment of disclosure; a refusal there waits for a change.
          if (!(
            error instanceof ActivityFailure &&
            error.cause instanceof ApplicationFailure &&
            error.cause.type === 'RuleViolation'
          ))
            throw error;
          await record('referral.send_refused', null, null, { outcome: 'refused', reason: error.cause.message });
          await condition(() => version !== seen + 1);
          continue;
        }
        // Withdrawn while it was being sent (a revocation, an override): it stays withdrawn.
        if (referral.state !== 'proposed') continue;
        // The SLA runs on the workflow's clock, not the activity's.
        referral.sentAt = nowIso();
        referral.consentId = consentId;
        await moveReferral(referral, 'sent', null, null);
        continue;
      }
      if (referral.state === 'sent') {
        const deadline = Date.parse(referral.sentAt!) + state.policy.referralSlaDays * DAY_MS;
        const answered = await condition(() => referral.state !== 'sent', Math.max(1, deadline - Date.now()));
        if (!answered)
          await moveReferral(referral, 'expired', null, null, `no answer within ${state.policy.referralSlaDays} days`);
        continue;
      }
      const seen = version;
      await condition(() => version !== seen);
    }
  }

  async function closureLetter(): Promise<void> {
    await setStep('closure_letter');
    // Risk first: closing waits for a documented plan, a director's approval and an accepting provider.
    // The reason it may close is in the trail before the letter is (cases started before this wait without it).
    const afterReasons = patched(LETTER_AFTER_ITS_REASONS);
    await condition(() => mayClose(state) && (!afterReasons || recording === 0));
    // Safe contact is decided by the activity on the record as it stands when the letter goes out.
    const letter = await CancellationScope.nonCancellable(() =>
      issueClosureLetter({
        caseId,
        agencyId: state.facts.agencyId,
        clientId,
        channel: letterRoute(state.facts).channel,
        riskFlags: state.facts.riskFlags,
      }),
    );
    state.letter = letter;
    // `letter.sent` is the outbox sender's to audit, once the letter has left; cases whose letter was issued
    // before the outbox (the activity answered `sent`) recorded it here, and replay the same.
    const action =
      letter.delivery === 'held_for_in_person'
        ? 'letter.held_for_in_person'
        : letter.delivery === 'queued'
          ? 'letter.queued'
          : 'letter.sent';
    await record(action, null, null, {
      after: letter,
      ...(letter.heldBecause ? { reason: letter.heldBecause } : {}),
    });
  }

  async function followUp(): Promise<void> {
    const closedAt = Date.now();
    const closedOn = today();
    // Cases from here on follow up as care: on the agency's days, with caring contacts for a client who carried a
    // suicide-risk flag. Older ones keep the policy's offsets counted from the instant they closed.
    const asCare = patched(FOLLOW_UP_AS_CARE);
    const plan: FollowUpPlan[] = asCare
      ? followUpPlan(state.policy, closedOn, state.risk.carriedSuicideRisk === true)
      : state.policy.followUpOffsetsDays.map((offsetDays) => ({
          offsetDays,
          kind: 'follow_up',
          dueOn: addDays(closedOn, offsetDays),
        }));
    if (asCare) state.followUp.schedule = plan;
    await setStep('follow_up');
    // The months of follow-up run in a fresh history that carries the case (the steps before it stay in this one).
    if (asCare && plan.length > 0 && !state.followUp.engaged && patched(FOLLOW_UP_CONTINUES_AS_NEW)) {
      return continueCase();
    }
    return followUpFrom(plan, false, (p) =>
      asCare ? msUntil(p.dueOn) : Math.max(1, closedAt + p.offsetDays * DAY_MS - Date.now()),
    );
  }

  /**
   * The follow-ups still due, each on its agency day (older cases: `waitMs`). In a continued run (`fresh`), a history
   * grown long (by record changes, say) continues as new again between two of them.
   */
  async function followUpFrom(
    plan: FollowUpPlan[],
    fresh: boolean,
    waitMs: (p: FollowUpPlan) => number = (p) => msUntil(p.dueOn),
  ): Promise<void> {
    // Each check made is one entry of the plan, in order: what remains is the rest.
    for (const entry of plan.slice(state.followUp.checks.length)) {
      const { offsetDays, kind } = entry;
      // Follow-up and caring contacts stop once the client has engaged with the new provider.
      await condition(() => state.followUp.engaged || (fresh && workflowInfo().continueAsNewSuggested), waitMs(entry));
      if (!state.followUp.engaged && fresh && workflowInfo().continueAsNewSuggested) return continueCase();
      if (state.followUp.engaged) break;
      await followUpDue(offsetDays, kind);
    }
    if (state.followUp.engaged) await record('follow_up.engaged', null, null);
  }

  async function followUpDue(offsetDays: number, kind: FollowUpPlan['kind']): Promise<void> {
    state.followUp.checks.push({ offsetDays, engaged: false });
    await createTask({
      taskKey: `${caseId}:${kind}:${offsetDays}`,
      caseId,
      kind: kind === 'follow_up' ? 'outreach.follow_up' : 'outreach.caring_contact',
      assigneeRole: 'counselor',
      assigneeId: state.facts.counselorId,
      detail:
        kind === 'follow_up'
          ? `${offsetDays}-day follow-up: the client has not engaged with the new provider; reach out`
          : `caring contact, ${offsetDays} days after closing: a brief note that you are thinking of them`,
    });
    await record(kind === 'follow_up' ? 'follow_up.not_engaged' : 'follow_up.caring_contact_due', null, null, {
      after: { offsetDays },
    });
  }

  /** Continues the case as new once every action in flight has been answered. */
  async function continueCase(): Promise<never> {
    await condition(allHandlersFinished);
    const { resume: _previous, ...rest } = input;
    return continueAsNew<typeof caseWorkflow>({
      ...rest,
      resume: { state, eventSeq, actionIds: applied.slice(-REMEMBERED_ACTIONS) },
    });
  }
}
