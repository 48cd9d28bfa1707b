import { Context } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import { appendAuditEvent } from '../db/audit';
import { insertCase } from '../db/cases';
import type { Database } from '../db/schema';
import type { Actor, CaseKind, CaseReason, CaseStatus } from '../domain/case';

export interface ActivityDeps {
  db: Kysely<Database>;
}

export interface OpenCaseInput {
  caseId: string;
  agencyId: string;
  clientId: string;
  counselorId: string;
  kind: CaseKind;
  reason: CaseReason;
  openedBy: Actor;
  requestId: string | null;
}

export interface OpenCaseResult {
  created: boolean;
}

export interface CloseCaseInput {
  caseId: string;
  clientId: string;
  status: Extract<CaseStatus, 'cancelled' | 'closed' | 'rejected'>;
  actor: Actor;
  reason: string;
  requestId: string | null;
}

function origin(): { workflowId: string; activityId: string } {
  const { info } = Context.current();
  return { workflowId: info.workflowExecution?.workflowId ?? 'none', activityId: info.activityId };
}

/** Activities get their dependencies here, so the worker wires real ones and tests pass a real database. */
export function createActivities({ db }: ActivityDeps) {
  return {
    /** Writes the case row and its first audit event, once, however often it is retried. */
    async openCase(input: OpenCaseInput): Promise<OpenCaseResult> {
      const { workflowId, activityId } = origin();
      return db.transaction().execute(async (trx) => {
        const created = await insertCase(trx, {
          case_id: input.caseId,
          agency_id: input.agencyId,
          client_id: input.clientId,
          counselor_id: input.counselorId,
          kind: input.kind,
          reason: input.reason,
          status: 'open',
          step: 'decision_review',
          workflow_id: workflowId,
          opened_by: input.openedBy.id,
        });
        await appendAuditEvent(trx, {
          eventKey: `${input.caseId}:opened`,
          actor: input.openedBy,
          action: 'case.opened',
          caseId: input.caseId,
          clientId: input.clientId,
          outcome: 'done',
          requestId: input.requestId,
          workflowId,
          activityId,
          after: { kind: input.kind, reason: input.reason, counselorId: input.counselorId, status: 'open' },
        });
        return { created };
      });
    },

    /** Ends the case in the read model and records who ended it and why. */
    async closeCase(input: CloseCaseInput): Promise<void> {
      const { workflowId, activityId } = origin();
      await db.transaction().execute(async (trx) => {
        const before = await trx
          .selectFrom('cases')
          .select(['status', 'step'])
          .where('case_id', '=', input.caseId)
          .executeTakeFirstOrThrow();
        await trx
          .updateTable('cases')
          .set({ status: input.status, step: 'done', updated_at: new Date() })
          .where('case_id', '=', input.caseId)
          .execute();
        await appendAuditEvent(trx, {
          eventKey: `${input.caseId}:${input.status}`,
          actor: input.actor,
          action: `case.${input.status}`,
          caseId: input.caseId,
          clientId: input.clientId,
          outcome: 'done',
          outcomeReason: input.reason,
          requestId: input.requestId,
          workflowId,
          activityId,
          before,
          after: { status: input.status, step: 'done' },
        });
      });
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
