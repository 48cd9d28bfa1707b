/**
 * Risk first (DOMAIN.md): a case carrying an active risk flag needs a documented continuity/safety plan and a
 * director's explicit approval, both after the latest flag, and cannot close before a receiver has accepted.
 */
import { type CaseProcessState, acceptedReferral } from '../process';
import { type Blocker, RULES, refuse } from './rule';

export function hasActiveRisk(state: CaseProcessState): boolean {
  return state.facts.riskFlags.length > 0;
}

export function planCoversFlags(state: CaseProcessState): boolean {
  return state.risk.planCoversFlags === state.risk.flagCount;
}

/** A documented safety plan and a director's approval, both after the latest flag. */
export function riskGateOpen(state: CaseProcessState): boolean {
  if (!hasActiveRisk(state)) return true;
  return planCoversFlags(state) && state.risk.approvalCoversFlags === state.risk.flagCount;
}

/** Closing waits for the gate and, for a client at risk, for a receiver who accepted. */
export function mayClose(state: CaseProcessState): boolean {
  return riskGateOpen(state) && (!hasActiveRisk(state) || acceptedReferral(state) !== undefined);
}

export function checkApprovalHasPlan(state: CaseProcessState): void {
  if (hasActiveRisk(state) && !planCoversFlags(state)) {
    refuse(
      RULES.riskFirst,
      'this client carries an active risk flag: document a continuity/safety plan before approving',
    );
  }
}

export function riskBlockers(state: CaseProcessState): Blocker[] {
  if (!hasActiveRisk(state)) return [];
  const blockers: Blocker[] = [];
  if (!riskGateOpen(state)) {
    blockers.push({
      rule: RULES.riskFirst,
      detail: planCoversFlags(state)
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
  return blockers;
}
