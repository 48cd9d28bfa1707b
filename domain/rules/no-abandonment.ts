/**
 * No abandonment (DOMAIN.md, ACA A.11-A.12, NASW 1.17): a case does not close without pretermination
 * counseling, unless the client's own actions preclude it (documented outreach attempts exhausted, a
 * client-initiated ending) or the clinician's safety does; the reason is recorded.
 */
import type { CaseProcessState } from '../process';
import { acceptedReferral } from '../process';
import { daysBetween } from '../time';
import { clientDeclinedServices } from './client-autonomy';
import { type Blocker, RULES, refuse } from './rule';

export function checkWaiver(state: CaseProcessState, basis: 'client_initiated' | 'clinician_safety'): void {
  // A client who stopped coming gets documented outreach attempts, not a waiver.
  if (basis === 'client_initiated' && state.facts.reason !== 'client_request') {
    refuse(
      RULES.noAbandonment,
      'the ending was not initiated by the client: hold the conversation or document outreach attempts',
    );
  }
  if (basis === 'clinician_safety' && state.facts.reason !== 'clinician_safety') {
    refuse(
      RULES.noAbandonment,
      "clinician safety is not this case's reason: hold the conversation or document outreach attempts",
    );
  }
}

/** Outreach attempts are spaced by policy, so "exhausted" means the client truly could not be reached. */
export function checkOutreachSpacing(state: CaseProcessState, attemptedOn: string): void {
  const last = state.conversation.outreach.at(-1);
  if (last && daysBetween(last.attemptedOn, attemptedOn) < state.policy.outreachSpacingDays) {
    refuse(
      RULES.noAbandonment,
      `outreach attempts must be at least ${state.policy.outreachSpacingDays} days apart; the last was on ${last.attemptedOn}`,
    );
  }
}

/** NASW 1.17(c): no ending for non-payment while the client may be in danger. */
export function checkNotNonPaymentAtRisk(state: CaseProcessState): void {
  if (state.facts.reason === 'financial' && state.facts.riskFlags.includes('suicide_risk')) {
    refuse(
      RULES.noAbandonment,
      'a client at suicide risk is not terminated for non-payment (NASW 1.17(c)); continue care or transfer for another reason',
    );
  }
}

export function abandonmentBlockers(state: CaseProcessState): Blocker[] {
  const blockers: Blocker[] = [];
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
  return blockers;
}
