import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { CaseKind, CaseReason, CaseStatus, Role } from '../domain/case';
import type {
  CaseProcessState,
  CaseContact,
  ContactChannel,
  ContactPreferences,
  Policy,
  ReferralState,
  RiskFlag,
} from '../domain/process';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json = ColumnType<unknown, string | null, string | null>;

export interface CasesTable {
  case_id: string;
  agency_id: string;
  client_id: string;
  counselor_id: string;
  kind: CaseKind;
  reason: CaseReason;
  status: CaseStatus;
  step: string;
  workflow_id: string;
  opened_by: string;
  created_at: Generated<Date>;
  updated_at: Timestamp;
  transfer_id: string | null;
  client_name: ColumnType<string, string | undefined, string>;
  last_day: ColumnType<string | null, string | null | undefined, string | null>;
  notice_due: ColumnType<string | null, string | null | undefined, string | null>;
  risk_flags: ColumnType<RiskFlag[], string | undefined, string>;
  /** As the case holds it (`caseContact`): channels, and whether an address is on record (the client's row has it). */
  contact: ColumnType<CaseContact, string | undefined, string>;
  has_sud_records: ColumnType<boolean, boolean | undefined, boolean>;
  state: ColumnType<CaseProcessState | null, string | null | undefined, string | null>;
  /** The workflow's event number of the snapshot in `state`; an older snapshot never overwrites a newer one. */
  state_version: ColumnType<number, number | undefined, number>;
  /** What lists filter and sort by, from `listFacts` (domain/case-list.ts) at each change. */
  due_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  escalated: ColumnType<boolean, boolean | undefined, boolean>;
  blocker_rules: ColumnType<string[], string[] | undefined, string[]>;
  step_since: ColumnType<Date, Date | undefined, Date>;
}

export interface AgencyPoliciesTable {
  agency_id: string;
  agency_name: string;
  agency_phone: string;
  policy: ColumnType<Policy, string, string>;
  updated_by: string;
  updated_at: Timestamp;
}

export interface ReferralsTable {
  referral_id: string;
  case_id: string;
  provider_id: string;
  provider_name: string;
  provider_contact: string;
  external: boolean;
  state: ReferralState;
  consent_id: string | null;
  appointment_at: Date | null;
  history: Json;
  state_version: number;
  updated_at: Timestamp;
}

export interface ConsentsTable {
  consent_id: string;
  case_id: string;
  client_id: string;
  recipient_provider_id: string;
  disclosed: string;
  purpose: string;
  expires_on: string;
  covers_sud_records: boolean;
  signed_on: string;
  revoked_at: Date | null;
}

export interface DisclosuresTable {
  disclosure_id: string;
  case_id: string;
  client_id: string;
  recipient_provider_id: string;
  consent_id: string;
  disclosed: string;
  substance_use_records: boolean;
  redisclosure_notice: string | null;
  disclosed_at: Date;
}

export interface LettersTable {
  letter_id: string;
  case_id: string;
  html: string;
  pdf: Buffer;
  pdf_sha256: string;
  html_sha256: string;
  channel: ContactChannel | null;
  delivery: LetterDelivery;
  created_at: Generated<Date>;
}

export type TaskState = 'open' | 'done' | 'cancelled';
/** `sent` only once it left (an SMTP server accepted it, or the front desk mailed its batch). */
export type LetterDelivery = 'queued' | 'batched_for_mail' | 'sent' | 'failed' | 'withheld' | 'held_for_in_person';

export interface TasksTable {
  task_key: string;
  task_id: Generated<string>;
  /** null: an operator's task, about no one agency (see the reconcile). */
  agency_id: string | null;
  /** null: a task about an agency rather than one case (a reconcile drift report). */
  case_id: string | null;
  kind: string;
  assignee_role: string;
  assignee_id: string | null;
  detail: string;
  state: ColumnType<TaskState, TaskState | undefined, TaskState>;
  due_at: Date | null;
  level: number | null;
  created_at: Generated<Date>;
  done_at: Date | null;
  closed_by: string | null;
  closed_reason: string | null;
  updated_at: Generated<Date>;
}

export type OutboxStatus = 'pending' | 'sending' | 'delivered' | 'batched' | 'dead' | 'withheld';

export interface OutboxTable {
  message_key: string;
  case_id: string | null;
  kind: string;
  channel: string;
  recipient: string;
  payload: Json;
  created_at: Generated<Date>;
  delivered_at: Date | null;
  agency_id: string | null;
  status: ColumnType<OutboxStatus, OutboxStatus | undefined, OutboxStatus>;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: ColumnType<Date, Date | undefined, Date>;
  /** Who holds the lease while `sending`: a sender that lost it (it was presumed dead) marks nothing. */
  claim_id: string | null;
  last_error: string | null;
}

export interface MailBatchItemsTable {
  message_key: string;
  agency_id: string;
  batch_date: string;
  case_id: string;
  letter_id: string;
  content: Json;
  added_at: Generated<Date>;
  mailed_at: Date | null;
  mailed_by: string | null;
}

export type AuditOutcome = 'done' | 'refused' | 'failed';

export interface AuditEventsTable {
  /** From a sequence: unique, but not the order events commit in (the chain's position is). */
  seq: ColumnType<string, string | number | bigint | undefined, never>;
  event_key: string;
  occurred_at: ColumnType<Date, Date, never>;
  actor_id: string;
  actor_role: Role | 'system';
  action: string;
  case_id: string | null;
  client_id: string | null;
  outcome: AuditOutcome;
  outcome_reason: string | null;
  request_id: string | null;
  source_address: string | null;
  workflow_id: string | null;
  activity_id: string | null;
  before: Json;
  after: Json;
  /** Events written before the per-agency chains: the hash of the event before it in the old global chain. */
  prev_hash: string | null;
  /** The event's own digest (hashEvent). */
  hash: string;
  agency_id: ColumnType<string | null, string | null | undefined, never>;
}

/** An agency's chain: one entry per event, each hash over the one before it (db/audit.ts, linkHash). */
export interface AuditChainTable {
  /** The agency's id; '' for the service's own events, which belong to no agency. */
  chain: string;
  position: ColumnType<string, string | number | bigint, never>;
  event_seq: ColumnType<string, string | number | bigint, never>;
  event_hash: string;
  prev_hash: string;
  hash: string;
  integrated_at: Generated<Date>;
}

/** Events written and not yet chained. */
export interface AuditPendingTable {
  event_seq: ColumnType<string, string | number | bigint, never>;
  chain: string;
  written_at: Generated<Date>;
}

/** Where an incremental verify of a chain starts: a position found whole, and its hash. */
export interface AuditCheckpointsTable {
  chain: string;
  position: ColumnType<string, string | number | bigint, never>;
  hash: string;
  verified_at: Generated<Date>;
}

export interface Database {
  cases: CasesTable;
  audit_events: AuditEventsTable;
  audit_chain: AuditChainTable;
  audit_pending: AuditPendingTable;
  audit_checkpoints: AuditCheckpointsTable;
  agency_policies: AgencyPoliciesTable;
  referrals: ReferralsTable;
  consents: ConsentsTable;
  disclosures: DisclosuresTable;
  letters: LettersTable;
  tasks: TasksTable;
  outbox: OutboxTable;
  mail_batch_items: MailBatchItemsTable;
  clients: ClientsTable;
  clinicians: CliniciansTable;
  providers: ProvidersTable;
  transfers: TransfersTable;
  proposals: ProposalsTable;
  users: UsersTable;
  api_tokens: ApiTokensTable;
  idempotency_keys: IdempotencyKeysTable;
  rate_limit_windows: RateLimitWindowsTable;
}

export interface UsersTable {
  user_id: string;
  agency_id: string;
  role: Role;
  name: string;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: Generated<Date>;
  /** Where task and digest emails go; none: the user gets no email. */
  email: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface ApiTokensTable {
  token_id: string;
  agency_id: string;
  user_id: string;
  token_hash: string;
  label: string;
  expires_at: Date;
  revoked_at: Date | null;
  created_at: Generated<Date>;
}

export interface IdempotencyKeysTable {
  agency_id: string;
  user_id: string;
  idempotency_key: string;
  route: string;
  request_hash: string;
  status: number | null;
  response: Json;
  headers: Json;
  created_at: Generated<Date>;
}

type JsonOf<T> = ColumnType<T, string, string>;

export interface ClientsTable {
  client_id: string;
  agency_id: string;
  name: string;
  counselor_id: string;
  active: boolean;
  risk_flags: JsonOf<RiskFlag[]>;
  contact: JsonOf<ContactPreferences>;
  has_sud_records: boolean;
  needs: JsonOf<string[]>;
  updated_at: Timestamp;
}

export interface CliniciansTable {
  clinician_id: string;
  agency_id: string;
  name: string;
  capacity: number;
  specialties: JsonOf<string[]>;
  active: boolean;
  contact: string;
  updated_at: Timestamp;
}

export interface ProvidersTable {
  provider_id: string;
  name: string;
  contact: string;
  specialties: JsonOf<string[]>;
  updated_at: Timestamp;
}

export type TransferStatus = 'opening' | 'open' | 'cancelled' | 'finished' | 'failed';

export interface TransfersTable {
  transfer_id: string;
  agency_id: string;
  counselor_id: string;
  last_day: string;
  client_ids: ColumnType<string[] | null, string | null, string | null>;
  status: TransferStatus;
  expected: number;
  opened: ColumnType<number, number | undefined, number>;
  reason: 'counselor_relocation' | 'counselor_departure';
  requested_by: string;
  requested_by_role: Role;
  cancel_reason: string | null;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

export interface ProposalsTable {
  case_id: string;
  transfer_id: string;
  client_id: string;
  clinician_id: string | null;
  overridden_by: string | null;
  created_at: Generated<Date>;
}

export type CaseRow = Selectable<CasesTable>;
export type NewCase = Insertable<CasesTable>;
export type CaseUpdate = Updateable<CasesTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;

/** One key's current fixed window of the API's rate limit (`address:…` or `token:…`). */
export interface RateLimitWindowsTable {
  key: string;
  started_at: Date;
  count: number;
}
