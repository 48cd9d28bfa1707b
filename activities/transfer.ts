import { derivedUuid } from '../ids';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Kysely } from 'kysely';
import { appendAuditEvent } from '../db/audit';
import { reserveCase } from '../db/cases';
import { type ReceiverLoad, lockProposals, receiverLoads } from '../db/proposals';
import { requiredSpecialties } from '../domain/receivers';
import type { Database, TransferStatus } from '../db/schema';
import { type Actor, caseWorkflowId } from '../domain/case';
import type { Candidate } from '../domain/process';
import type { CaseInput } from '../domain/process';

export interface TransferActivityDeps {
  db: Kysely<Database>;
  /** Starts and signals case workflows; absent where a worker runs only case activities. */
  temporal?: Client;
  taskQueue: string;
  /** How many case workflows one activity starts at once. */
  startConcurrency?: number;
}

export interface TransferPageInput {
  transferId: string;
  afterClientId: string | null;
  pageSize: number;
}

export interface TransferPageResult {
  nextClientId: string | null;
  started: number;
  alreadyStarted: number;
  /** Cases of the whole transfer started so far. */
  openedTotal: number;
}

/** The case id of one client in one transfer: the same every time, so a retried start is a no-op. */
export function transferCaseId(transferId: string, clientId: string): string {
  return derivedUuid(`transfer:${transferId}:${clientId}`);
}

/**
 * The receiver for one client: among clinicians with room and every required specialty, the one
 * with the most room left relative to capacity (ties by id), so a caseload spreads fairly.
 */
export function chooseReceiver(receivers: ReceiverLoad[], required: string[]): ReceiverLoad | undefined {
  let best: ReceiverLoad | undefined;
  let bestRoom = -1;
  for (const r of receivers) {
    if (r.load >= r.capacity) continue;
    if (!required.every((s) => r.specialties.includes(s))) continue;
    const room = (r.capacity - r.load) / r.capacity;
    if (room > bestRoom || (room === bestRoom && best && r.clinicianId < best.clinicianId)) {
      best = r;
      bestRoom = room;
    }
  }
  return best;
}

async function inBatches<T>(items: T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(size, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await run(item);
    }
  });
  await Promise.all(lanes);
}

function requireTemporal(temporal: Client | undefined): Client {
  if (!temporal)
    throw ApplicationFailure.nonRetryable('this worker has no Temporal client for transfers', 'InvalidInput');
  return temporal;
}

/**
 * A page out of rows read one past its size (`limit(size + 1)`): the page, and whether it is the last. The last
 * page says so itself, so no empty page is read after a list that ends on a full one.
 */
function lookAhead<T>(rows: T[], size: number): { page: T[]; last: boolean } {
  return { page: rows.slice(0, size), last: rows.length <= size };
}

export function createTransferActivities({ db, temporal, taskQueue, startConcurrency = 16 }: TransferActivityDeps) {
  return {
    /**
     * Opens the cases of one page of the caseload: proposes a receiver for each client (under a per-agency
     * lock, so concurrent transfers never overbook a clinician), then starts each case workflow, at most
     * `startConcurrency` at once. Idempotent: case ids derive from transfer and client.
     */
    async openTransferPage(input: TransferPageInput): Promise<TransferPageResult> {
      const client = requireTemporal(temporal);
      const transfer = await db
        .selectFrom('transfers')
        .selectAll()
        .where('transfer_id', '=', input.transferId)
        .executeTakeFirst();
      // The API starts the workflow inside the transaction that records the transfer, so a page can run before
      // that commit is visible: retried until it is (the API terminates the workflow if the commit fails).
      if (!transfer) throw ApplicationFailure.retryable(`transfer ${input.transferId} is not recorded yet`, 'NotYet');

      // The page first, by the caseload's index alone; then which of its clients are already in an open case of
      // another process, by the cases' client index. One query with NOT EXISTS was planned as a walk of every open
      // case of the agency per client while a bulk import had left the statistics stale (seconds a page).
      let query = db
        .selectFrom('clients')
        .selectAll()
        .where('counselor_id', '=', transfer.counselor_id)
        .where('agency_id', '=', transfer.agency_id)
        .where('active', '=', true)
        .orderBy('client_id')
        .limit(input.pageSize + 1);
      if (input.afterClientId) query = query.where('client_id', '>', input.afterClientId);
      if (transfer.client_ids) query = query.where('client_id', 'in', transfer.client_ids);
      const { page, last } = lookAhead(await query.execute(), input.pageSize);
      if (page.length === 0) return { nextClientId: null, started: 0, alreadyStarted: 0, openedTotal: transfer.opened };
      const nextClientId = last ? null : page.at(-1)!.client_id;
      // A client already in an open case of another process is not opened twice; the progress shows the gap.
      const elsewhere = new Set(
        (
          await db
            .selectFrom('cases')
            .select('client_id')
            .where('agency_id', '=', transfer.agency_id)
            .where(
              'client_id',
              'in',
              page.map((c) => c.client_id),
            )
            .where('status', 'in', ['opening', 'open'])
            .where((eb) => eb.or([eb('transfer_id', 'is', null), eb('transfer_id', '!=', transfer.transfer_id)]))
            .execute()
        ).map((c) => c.client_id),
      );
      const clients = page.filter((c) => !elsewhere.has(c.client_id));
      if (clients.length === 0) return { nextClientId, started: 0, alreadyStarted: 0, openedTotal: transfer.opened };

      const proposals = await db.transaction().execute(async (trx) => {
        await lockProposals(trx, transfer.agency_id);
        const caseIds = clients.map((c) => transferCaseId(transfer.transfer_id, c.client_id));
        const existing = await trx
          .selectFrom('proposals')
          .select(['case_id', 'clinician_id'])
          .where('case_id', 'in', caseIds)
          .execute();
        const known = new Map(existing.map((p) => [p.case_id, p.clinician_id]));
        const loads = await receiverLoads(trx, transfer.agency_id, { exceptClinicianId: transfer.counselor_id });
        const chosen = new Map<string, string | null>();
        const fresh: { case_id: string; transfer_id: string; client_id: string; clinician_id: string | null }[] = [];
        for (const c of clients) {
          const caseId = transferCaseId(transfer.transfer_id, c.client_id);
          if (known.has(caseId)) {
            chosen.set(caseId, known.get(caseId) ?? null);
            continue;
          }
          const receiver = chooseReceiver(loads, requiredSpecialties(c.needs, c.risk_flags));
          if (receiver) receiver.load++;
          chosen.set(caseId, receiver?.clinicianId ?? null);
          fresh.push({
            case_id: caseId,
            transfer_id: transfer.transfer_id,
            client_id: c.client_id,
            clinician_id: receiver?.clinicianId ?? null,
          });
        }
        if (fresh.length > 0) await trx.insertInto('proposals').values(fresh).execute();
        return chosen;
      });

      const clinicianIds = [...new Set([...proposals.values()].filter((v): v is string => !!v))];
      const clinicians = clinicianIds.length
        ? await db
            .selectFrom('clinicians')
            .select(['clinician_id', 'name', 'contact'])
            .where('agency_id', '=', transfer.agency_id)
            .where('clinician_id', 'in', clinicianIds)
            .execute()
        : [];
      const byId = new Map(clinicians.map((c) => [c.clinician_id, c]));
      const openedBy: Actor = { id: transfer.requested_by, role: transfer.requested_by_role };

      let started = 0;
      let alreadyStarted = 0;
      Context.current().heartbeat({ started, alreadyStarted });
      await inBatches(clients, startConcurrency, async (c) => {
        const caseId = transferCaseId(transfer.transfer_id, c.client_id);
        const receiver = byId.get(proposals.get(caseId) ?? '');
        const proposedCandidates: Candidate[] = receiver
          ? [{ providerId: receiver.clinician_id, name: receiver.name, external: false, contact: receiver.contact }]
          : [];
        // Ids and the case's choices only: the case reads the client's facts from the record itself.
        const args: CaseInput = {
          caseId,
          agencyId: transfer.agency_id,
          clientId: c.client_id,
          kind: 'transfer',
          reason: transfer.reason,
          lastDay: transfer.last_day,
          transferId: transfer.transfer_id,
          proposedCandidates,
          openedBy,
          requestId: null,
        };
        // The reservation makes "one open case per client" hold against cases opened meanwhile by hand.
        const reservation = await reserveCase(db, {
          case_id: caseId,
          agency_id: transfer.agency_id,
          client_id: c.client_id,
          counselor_id: c.counselor_id,
          kind: 'transfer',
          reason: transfer.reason,
          status: 'opening',
          step: 'opening',
          workflow_id: caseWorkflowId(caseId),
          opened_by: openedBy.id,
          transfer_id: transfer.transfer_id,
          last_day: transfer.last_day,
        });
        if (reservation.outcome === 'client_has_open_case') return;
        try {
          await client.workflow.start('caseWorkflow', {
            workflowId: caseWorkflowId(caseId),
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
            taskQueue,
            args: [args],
          });
          started++;
        } catch (error) {
          if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
          alreadyStarted++;
        }
        Context.current().heartbeat({ started, alreadyStarted });
      });

      // Every proposal of a finished page has its case started: their count is the transfer's progress,
      // right even when a retried page finds its cases already started.
      const opened = await db
        .updateTable('transfers')
        .set({
          opened: (eb) =>
            eb
              .selectFrom('proposals')
              .select((e) => e.fn.countAll<number>().as('n'))
              .where('transfer_id', '=', transfer.transfer_id),
          updated_at: new Date(),
        })
        .where('transfer_id', '=', transfer.transfer_id)
        .returning('opened')
        .executeTakeFirstOrThrow();
      return {
        nextClientId,
        started,
        alreadyStarted,
        openedTotal: opened.opened,
      };
    },

    /** Cancels the open cases of one page of a transfer, each recording why. */
    async cancelTransferPage(input: {
      transferId: string;
      afterCaseId: string | null;
      pageSize: number;
      actor: Actor;
      reason: string;
    }): Promise<{ nextCaseId: string | null; cancelled: number }> {
      const client = requireTemporal(temporal);
      let query = db
        .selectFrom('proposals')
        .select('case_id')
        .where('transfer_id', '=', input.transferId)
        .orderBy('case_id')
        .limit(input.pageSize + 1);
      if (input.afterCaseId) query = query.where('case_id', '>', input.afterCaseId);
      const { page, last } = lookAhead(await query.execute(), input.pageSize);
      let cancelled = 0;
      await inBatches(page, startConcurrency, async ({ case_id }) => {
        try {
          await client.workflow.getHandle(caseWorkflowId(case_id)).executeUpdate('cancelCase', {
            args: [{ actor: input.actor, reason: `transfer cancelled: ${input.reason}`, requestId: null }],
          });
          cancelled++;
        } catch (error) {
          // A case still opening cannot take the cancel yet: fail the page, so the retry finds it open.
          if (error instanceof WorkflowUpdateFailedError && /is opening/.test(error.cause?.message ?? '')) {
            throw new Error(`case ${case_id} is still opening; the page is retried`);
          }
          // Already ended, or never started: nothing to cancel.
          if (!(error instanceof WorkflowNotFoundError || error instanceof WorkflowUpdateFailedError)) throw error;
        }
        Context.current().heartbeat({ cancelled });
      });
      return { nextCaseId: last ? null : page.at(-1)!.case_id, cancelled };
    },

    /** Moves the transfer's own record along, with its audit event. */
    async setTransferStatus(input: {
      transferId: string;
      status: TransferStatus;
      actor: Actor | null;
      reason: string | null;
    }): Promise<void> {
      await db.transaction().execute(async (trx) => {
        const before = await trx
          .selectFrom('transfers')
          .select(['status', 'counselor_id', 'agency_id'])
          .where('transfer_id', '=', input.transferId)
          .executeTakeFirstOrThrow();
        if (before.status === input.status) return;
        await trx
          .updateTable('transfers')
          .set({ status: input.status, cancel_reason: input.reason, updated_at: new Date() })
          .where('transfer_id', '=', input.transferId)
          .execute();
        await appendAuditEvent(trx, {
          eventKey: `transfer:${input.transferId}:${input.status}`,
          agencyId: before.agency_id,
          actor: input.actor ?? { id: 'system', role: 'system' },
          action: `transfer.${input.status}`,
          outcome: 'done',
          outcomeReason: input.reason,
          workflowId: `transfer-${input.transferId}`,
          before: { status: before.status },
          after: { status: input.status, counselorId: before.counselor_id },
        });
      });
    },
  };
}
