/**
 * Who may do what: the one role matrix. The API checks it before anything else (403), the case
 * workflow's validators check it again (a refusal named `role`), and the README's table is tested against it.
 * Object-level scope (an agency's own records; a counselor's own cases) is in `canSeeCase` below.
 */
import type { Role } from './case';

const DIRECTOR = ['clinical_director'] as const;
const COUNSELOR_DIRECTOR = ['counselor', 'clinical_director'] as const;
const STAFF_DIRECTOR = ['staff', 'clinical_director'] as const;
const CARE_TEAM = ['staff', 'counselor', 'clinical_director'] as const;

export const PERMISSIONS = {
  // a case, and each human action on it (named after the workflow update)
  startCase: CARE_TEAM,
  readCase: ['staff', 'counselor', 'clinical_director', 'compliance'],
  reviewDecision: DIRECTOR,
  reviseDecision: COUNSELOR_DIRECTOR,
  raiseRiskFlag: CARE_TEAM,
  recordSafetyPlan: COUNSELOR_DIRECTOR,
  approveSafetyPlan: DIRECTOR,
  recordConversation: COUNSELOR_DIRECTOR,
  recordOutreachAttempt: COUNSELOR_DIRECTOR,
  waiveConversation: DIRECTOR,
  proposeReferral: CARE_TEAM,
  recordReferralResponse: CARE_TEAM,
  scheduleFirstAppointment: CARE_TEAM,
  recordAppointmentOutcome: CARE_TEAM,
  withdrawReferral: STAFF_DIRECTOR,
  recordConsent: CARE_TEAM,
  revokeConsent: CARE_TEAM,
  recordEngagement: COUNSELOR_DIRECTOR,
  cancelCase: STAFF_DIRECTOR,
  // caseload transfers
  startTransfer: STAFF_DIRECTOR,
  readTransfer: ['staff', 'clinical_director', 'compliance'],
  cancelTransfer: STAFF_DIRECTOR,
  overrideProposal: DIRECTOR,
  // the work queue
  readQueue: CARE_TEAM,
  readAgencyQueue: STAFF_DIRECTOR,
  reassignTask: DIRECTOR,
  completeTask: CARE_TEAM,
  // the front desk's print-and-mail batch of closure letters
  handleMail: STAFF_DIRECTOR,
  // reference data and administration
  manageClients: ['staff', 'clinical_director', 'admin'],
  listClients: ['staff', 'counselor', 'clinical_director', 'admin'],
  manageClinicians: ['staff', 'clinical_director', 'admin'],
  manageProviders: ['admin'],
  setPolicy: ['admin'],
  manageUsers: ['admin'],
  readAudit: ['compliance', 'admin'],
  // Temporal's namespace holds every agency's cases and a payload names none: opening them is the operator's act.
  decodePayloads: ['admin'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

/** What each permission lets one do, in the words of the README's table. */
export const PERMISSION_LABELS: Record<Permission, string> = {
  startCase: 'start a case (a counselor: for their own clients)',
  readCase: 'read a case and its letter',
  reviewDecision: 'review a decision',
  reviseDecision: 'revise a decision sent back',
  raiseRiskFlag: "raise a risk flag (on the client's record)",
  recordSafetyPlan: 'document a safety plan',
  approveSafetyPlan: 'approve a safety plan',
  recordConversation: 'record the ending conversation',
  recordOutreachAttempt: 'record an outreach attempt',
  waiveConversation: 'go on without the conversation',
  proposeReferral: 'propose receivers',
  recordReferralResponse: "record a receiver's answer",
  scheduleFirstAppointment: 'record the first appointment',
  recordAppointmentOutcome: 'record whether it was kept',
  withdrawReferral: 'withdraw a referral',
  recordConsent: 'record a release',
  revokeConsent: 'record a revocation',
  recordEngagement: 'record engagement at follow-up',
  cancelCase: 'cancel a case',
  startTransfer: 'start a caseload transfer',
  readTransfer: "read a transfer's progress",
  cancelTransfer: 'cancel a transfer',
  overrideProposal: "override a transfer's proposal",
  readQueue: 'see what waits for me (my tasks and my role’s)',
  readAgencyQueue: "see the agency's whole queue",
  reassignTask: 'reassign a task',
  completeTask: 'mark an outreach task done',
  handleMail: "print and mail the day's letters",
  manageClients: 'write clients',
  listClients: 'list clients (a counselor: their own)',
  manageClinicians: 'write clinicians',
  manageProviders: 'write the shared provider directory',
  setPolicy: "set the agency's policy",
  manageUsers: 'manage users and tokens',
  readAudit: 'read, export and verify the audit trail',
  decodePayloads: "open Temporal's sealed payloads (the codec endpoint)",
};

const ROLE_COLUMNS = ['staff', 'counselor', 'clinical_director', 'compliance', 'admin'] as const;

/** The README's role table, made from the matrix (a test holds the README to it). */
export function permissionTable(): string {
  const header = `| action | ${ROLE_COLUMNS.join(' | ')} |`;
  const rule = `| --- | ${ROLE_COLUMNS.map(() => '---').join(' | ')} |`;
  const rows = (Object.keys(PERMISSIONS) as Permission[]).map(
    (p) => `| ${PERMISSION_LABELS[p]} (\`${p}\`) | ${ROLE_COLUMNS.map((r) => (may(r, p) ? 'yes' : '—')).join(' | ')} |`,
  );
  return [header, rule, ...rows].join('\n');
}

export function may(role: Role | 'system', permission: Permission): boolean {
  return role !== 'system' && (PERMISSIONS[permission] as readonly Role[]).includes(role);
}

/** Object-level access to a case: another agency's does not exist; a counselor sees only their own; admins none. */
export function canSeeCase(
  user: { role: Role; id: string; agencyId: string },
  row: { agencyId: string; counselorId: string },
): boolean {
  if (row.agencyId !== user.agencyId) return false;
  if (user.role === 'counselor') return row.counselorId === user.id;
  return user.role !== 'admin';
}
