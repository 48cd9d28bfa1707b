import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { CaseKind, CaseReason, CaseStatus, Role } from '../domain/case';

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
}

export type AuditOutcome = 'done' | 'refused' | 'failed';

export interface AuditEventsTable {
  seq: ColumnType<string, string | number | bigint, never>;
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
  prev_hash: string;
  hash: string;
}

export interface Database {
  cases: CasesTable;
  audit_events: AuditEventsTable;
}

export type CaseRow = Selectable<CasesTable>;
export type NewCase = Insertable<CasesTable>;
export type CaseUpdate = Updateable<CasesTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
