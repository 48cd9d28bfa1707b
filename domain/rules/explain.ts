/** What a case waits for now, and what would stop it from closing, each by the rule that holds it. */
import { type CaseProcessState, currentReferral, nextFollowUp } from '../process';
import { DEFAULT_TIME_ZONE, localDate } from '../time';
import { abandonmentBlockers } from './no-abandonment';
import { isBlocker, releaseFor } from './consent-before-disclosure';
import { noticeBlocker, noticeWait } from './deadlines';
import { riskBlockers } from './risk-first';
import type { Blocker } from './rule';

export function agencyToday(state: CaseProcessState, nowMs: number): string {
  return localDate(nowMs, state.policy.timeZone ?? DEFAULT_TIME_ZONE);
}

export function explain(state: CaseProcessState, today: string): { waitingFor: string[]; blockers: Blocker[] } {
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
        const release = referral.candidate.external
          ? releaseFor(state.consents, {
              providerId: referral.candidate.providerId,
              providerName: referral.candidate.name,
              today,
              substanceUseRecords: state.facts.hasSubstanceUseRecords,
            })
          : null;
        if (release && isBlocker(release)) {
          waitingFor.push(`${release.rule}: ${release.detail}`);
          blockers.push(release);
        } else waitingFor.push(`the referral to ${referral.candidate.name} to be sent`);
      } else if (referral.state === 'sent') waitingFor.push(`${referral.candidate.name} to accept or decline`);
      else if (referral.state === 'accepted')
        waitingFor.push(`the first appointment with ${referral.candidate.name} to be scheduled`);
      break;
    }
    case 'closure_letter':
      waitingFor.push('the closure letter to be issued');
      break;
    case 'follow_up': {
      const next = nextFollowUp(state);
      waitingFor.push(
        next
          ? `the ${next.kind === 'follow_up' ? 'follow-up' : 'caring contact'} on ${next.dueOn}, unless the client engages with the new provider first`
          : state.followUp.engaged
            ? 'nothing more: the client has engaged with the new provider, and the case is closing'
            : 'the follow-up checks after closure',
      );
      break;
    }
    default:
      break;
  }
  const notice = noticeWait(state);
  if (notice) waitingFor.push(notice);
  const deadline = noticeBlocker(state, today);
  if (deadline) blockers.push(deadline);
  blockers.push(...riskBlockers(state), ...abandonmentBlockers(state));
  return { waitingFor, blockers };
}
