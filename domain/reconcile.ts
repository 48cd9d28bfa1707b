/**
 * The invariants the reconcile checks between Temporal and PostgreSQL, and what a run reports. Pure data: the
 * reconcile workflow returns a summary of this shape. A drift names ids, statuses and counts only, never
 * anything about a client's health.
 */

export const DRIFT_CHECKS = [
  'case_row_without_workflow',
  'case_workflow_without_row',
  'case_state_mismatch',
  'case_opening_stale',
  'client_open_cases',
  'transfer_counts',
  'audit_event_duplicated',
  'audit_chain_broken',
  'outbox_undelivered',
] as const;
export type DriftCheck = (typeof DRIFT_CHECKS)[number];

/** What each check means, in an operator's words (the CLI's lines and the staff task's text). */
export const DRIFT_LABELS: Record<DriftCheck, string> = {
  case_row_without_workflow: 'case rows whose workflow Temporal does not have',
  case_workflow_without_row: 'case workflows with no case row',
  case_state_mismatch: 'cases whose row and workflow disagree (open ↔ running, ended ↔ completed)',
  case_opening_stale: 'case reservations still opening past the reservation window',
  client_open_cases: 'clients with more than one open case in an agency',
  transfer_counts: 'transfers whose counts do not add up to their cases',
  audit_event_duplicated: 'audit events recorded twice under one key',
  audit_chain_broken: 'breaks in the audit chain (or its anchor)',
  outbox_undelivered: 'messages still undelivered past their retry window',
};

export interface Drift {
  check: DriftCheck;
  /** The agency it belongs to; null when it cannot be placed in one (it goes to the operator's queue). */
  agencyId: string | null;
  /** The id it is about: a case, workflow, client, transfer, event key, sequence number or message key. */
  subject: string;
  /** Statuses, counts and ids only. */
  detail: string;
}

export interface ReconcileOptions {
  /** Rows and workflows that changed this recently are left for the next run (work in flight). */
  settleMs?: number;
  /** How old an `opening` reservation may be (default: the API's reservation window). */
  openingWindowMs?: number;
  /** How old an undelivered message may be (default: the sender's whole retry window). */
  outboxWindowMs?: number;
  /** Verify every audit chain from its genesis (default: only in the 03:00 UTC hour; else from the checkpoints). */
  fullAuditVerify?: boolean;
}

export interface ReconcileSummary {
  ok: boolean;
  checkedAt: string;
  checked: { caseRows: number; caseWorkflows: number; transfers: number; auditEvents: number };
  drift: Record<DriftCheck, number>;
  /** Staff tasks the run opened for new drift, and closed for drift that is gone. */
  tasks?: { opened: number; closed: number };
}

export function emptyDriftCounts(): Record<DriftCheck, number> {
  return Object.fromEntries(DRIFT_CHECKS.map((c) => [c, 0])) as Record<DriftCheck, number>;
}
