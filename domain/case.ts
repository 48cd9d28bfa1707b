/**
 * The vocabulary of a case, shared by workflows, activities and the API.
 * Pure data: this folder is loaded inside the workflow sandbox.
 */

export const CASE_KINDS = ['transfer', 'referral', 'termination'] as const;
export type CaseKind = (typeof CASE_KINDS)[number];

export const CASE_REASONS = [
  'counselor_relocation',
  'counselor_departure',
  'goals_met',
  'no_longer_beneficial',
  'outside_scope',
  'clinician_fit',
  'clinician_safety',
  'client_request',
  'financial',
  'client_stopped_attending',
] as const;
export type CaseReason = (typeof CASE_REASONS)[number];

export const ROLES = ['staff', 'counselor', 'clinical_director', 'compliance', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Actor {
  id: string;
  role: Role;
}

export const CASE_STATUSES = ['opening', 'open', 'closed', 'cancelled', 'rejected'] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];

export function caseWorkflowId(caseId: string): string {
  return `case-${caseId}`;
}

/**
 * How old an `opening` reservation may be before a start that never reached Temporal is given up (the API),
 * and before the reconcile counts it as drift.
 */
export const STALE_RESERVATION_MS = 2 * 60_000;
