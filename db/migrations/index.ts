import type { Migration } from 'kysely';
import * as casesAndAudit from './2026-11-22T000000_cases_and_audit';
import * as caseProcess from './2026-11-22T010000_case_process';
import * as caseloadTransfer from './2026-11-22T020000_caseload_transfer';
import * as usersAndTokens from './2026-11-22T030000_users_and_tokens';
import * as auditAgency from './2026-11-22T040000_audit_agency';
import * as tenancy from './2026-11-22T050000_tenancy';
import * as caseLists from './2026-11-22T060000_case_lists';
import * as workQueue from './2026-11-22T070000_work_queue';
import * as delivery from './2026-11-22T080000_delivery';
import * as operatorTasks from './2026-11-22T090000_operator_tasks';
import * as guards from './2026-11-22T100000_guards';
import * as auditChains from './2026-11-23T000000_audit_chains';

/** Every migration, by name; names sort in the order they run. */
export const migrations: Record<string, Migration> = {
  '2026-11-22T000000_cases_and_audit': casesAndAudit,
  '2026-11-22T010000_case_process': caseProcess,
  '2026-11-22T020000_caseload_transfer': caseloadTransfer,
  '2026-11-22T030000_users_and_tokens': usersAndTokens,
  '2026-11-22T040000_audit_agency': auditAgency,
  '2026-11-22T050000_tenancy': tenancy,
  '2026-11-22T060000_case_lists': caseLists,
  '2026-11-22T070000_work_queue': workQueue,
  '2026-11-22T080000_delivery': delivery,
  '2026-11-22T090000_operator_tasks': operatorTasks,
  '2026-11-22T100000_guards': guards,
  '2026-11-23T000000_audit_chains': auditChains,
};
