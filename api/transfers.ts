import { randomUUID } from 'node:crypto';
import { derivedUuid } from '../ids';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { Router } from 'express';
import type { Kysely } from 'kysely';
import { appendAuditEvent } from '../db/audit';
import { findClient } from '../db/clients';
import { lockProposals, receiverLoads } from '../db/proposals';
import {
  caseloadSize,
  caseloadStrangers,
  findClinician,
  findProposal,
  findTransfer,
  openTransferOf,
  transferProgress,
} from '../db/transfers';
import { checkReceiver, checkTransferStart } from '../domain/transfers';
import { localDate } from '../domain/time';
import { agencyTimeZone } from '../db/policies';
import { deniedRead } from './denied';
import { refusing } from './refusals';
import type { Database } from '../db/schema';
import { caseWorkflowId } from '../domain/case';
import { proposeReferralUpdate } from '../workflows/case';
import { cancelTransferUpdate, caseloadTransferWorkflow } from '../workflows/caseload-transfer';
import { PERMISSIONS } from '../domain/roles';
import { requireRoles, userOf } from './auth';
import { actorOf, parse } from './http';
import { problem } from './problem';
import {
  cancelCaseBody,
  createTransferBody,
  overrideProposalBody,
  transferCaseParams,
  transferIdParams,
} from './schemas';

const LIST_CAP = 100;
const STUCK_AFTER_DAYS = 7;

export function transferWorkflowId(transferId: string): string {
  return `transfer-${transferId}`;
}

/** Caseload transfers: start one for a relocating counselor, watch it against the last day, cancel it. */
export function transferRoutes({
  db,
  temporal,
  taskQueue,
}: {
  db: Kysely<Database>;
  temporal: Client;
  taskQueue: string;
}): Router {
  const router = Router();

  /** Starts a transfer of the counselor's active caseload (or the listed clients); every check happens first. */
  router.post('/v1/transfers', async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, PERMISSIONS.startTransfer, 'starting a transfer');
    const body = parse(createTransferBody, req.body, 'body');
    const unique = body.clientIds ? [...new Set(body.clientIds)] : null;
    const counselorKnown = (await findClinician(db, user.agencyId, body.counselorId)) !== undefined;
    const strangers = unique ? await caseloadStrangers(db, user.agencyId, body.counselorId, unique) : [];
    const expected = unique ? unique.length : await caseloadSize(db, user.agencyId, body.counselorId);
    const today = localDate(Date.now(), await agencyTimeZone(db, user.agencyId));
    refusing(() =>
      checkTransferStart({
        counselorId: body.counselorId,
        lastDay: body.lastDay,
        today,
        counselorKnown,
        strangers,
        expected,
      }),
    );

    // With an Idempotency-Key the id derives from the agency, the user and the key.
    const key = req.get('idempotency-key');
    const transferId = key ? derivedUuid(`transfer:${user.agencyId}:${user.id}:${key}`) : randomUUID();
    let started = false;
    try {
      // The row and the start stand or fall together: a failed start leaves no transfer behind, and a start whose
      // row did not commit is terminated below.
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('transfers')
          .values({
            transfer_id: transferId,
            agency_id: user.agencyId,
            counselor_id: body.counselorId,
            last_day: body.lastDay,
            reason: body.reason,
            client_ids: body.clientIds ? JSON.stringify([...new Set(body.clientIds)]) : null,
            status: 'opening',
            expected,
            requested_by: actor.id,
            requested_by_role: actor.role,
          })
          .execute();
        await temporal.workflow.start(caseloadTransferWorkflow, {
          workflowId: transferWorkflowId(transferId),
          taskQueue,
          args: [{ transferId, lastDay: body.lastDay }],
        });
        started = true;
        // Last, so the audit chain's lock is held only for the commit, not across the call to Temporal.
        await appendAuditEvent(trx, {
          eventKey: `transfer:${transferId}:requested`,
          agencyId: user.agencyId,
          actor,
          action: 'transfer.requested',
          outcome: 'done',
          requestId: req.id,
          sourceAddress: req.ip ?? null,
          workflowId: transferWorkflowId(transferId),
          after: { counselorId: body.counselorId, lastDay: body.lastDay, expected },
        });
      });
    } catch (error) {
      if (started) {
        await temporal.workflow
          .getHandle(transferWorkflowId(transferId))
          .terminate('the transfer was not recorded')
          .catch(() => undefined);
      }
      if ((error as { code?: string }).code === '23505') {
        const open = await openTransferOf(db, user.agencyId, body.counselorId);
        if (open)
          throw problem(409, `${body.counselorId} already has an open transfer (${open.transfer_id})`, {
            rule: 'one_open_transfer',
          });
        throw problem(409, `a transfer with id ${transferId} already exists`);
      }
      throw error;
    }
    res.status(202).location(`/v1/transfers/${transferId}`).json({ transferId, status: 'opening', expected });
  });

  /** Where every client of the transfer stands, from the read model: fast at any caseload size. */
  router.get('/v1/transfers/:transferId', async (req, res) => {
    const user = userOf(req);
    requireRoles(user, PERMISSIONS.readTransfer, 'reading a transfer');
    const { transferId } = parse(transferIdParams, req.params, 'path');
    const transfer =
      (await findTransfer(db, user.agencyId, transferId)) ??
      (await deniedRead(db, req, user, { kind: 'transfer', id: transferId }, `no transfer ${transferId}`));
    // The agency's today: a notice due tomorrow in Chicago is not yet due at 7 p.m. there.
    const today = localDate(Date.now(), await agencyTimeZone(db, user.agencyId));
    const { bySteps, informed, atRisk, escalated, stuck, unmatched } = await transferProgress(
      db,
      user.agencyId,
      transferId,
      {
        today,
        listCap: LIST_CAP,
        stuckAfterDays: STUCK_AFTER_DAYS,
      },
    );
    const steps: Record<string, number> = {};
    const statuses: Record<string, number> = {};
    for (const row of bySteps.rows) {
      if (row.status === 'open') steps[row.step] = (steps[row.step] ?? 0) + Number(row.n);
      statuses[row.status] = (statuses[row.status] ?? 0) + Number(row.n);
    }
    const told = { inTime: 0, late: 0, notYet: 0 };
    for (const row of informed.rows) {
      if (row.informed === 'true') told.inTime += Number(row.n);
      else if (row.informed === 'false') told.late += Number(row.n);
      else told.notYet += Number(row.n);
    }
    // A case counts once its own workflow has opened it from the client record, not while only reserved.
    const casesOpened = Object.values(statuses).reduce((a, b) => a + b, 0) - (statuses.opening ?? 0);
    res.json({
      transferId,
      counselorId: transfer.counselor_id,
      lastDay: transfer.last_day,
      status: transfer.status,
      expected: transfer.expected,
      started: transfer.opened,
      cases: casesOpened,
      byStatus: statuses,
      openBySteps: steps,
      informed: {
        ...told,
        everyClientInTime: told.late === 0 && told.notYet === 0 && casesOpened === transfer.expected,
      },
      atRiskOfMissingNotice: atRisk,
      escalated,
      stuck,
      withoutProposedReceiver: unmatched,
      done: statuses.closed ?? 0,
      listsCappedAt: LIST_CAP,
    });
  });

  /** Cancels the transfer (the move fell through); its open cases are cancelled, each saying why. */
  router.post('/v1/transfers/:transferId/cancel', async (req, res) => {
    const actor = actorOf(req);
    requireRoles(userOf(req), PERMISSIONS.cancelTransfer, 'cancelling a transfer');
    const { transferId } = parse(transferIdParams, req.params, 'path');
    const { reason } = parse(cancelCaseBody, req.body, 'body');
    const user = userOf(req);
    const transfer =
      (await findTransfer(db, user.agencyId, transferId)) ??
      (await deniedRead(db, req, user, { kind: 'transfer', id: transferId }, `no transfer ${transferId}`));
    try {
      const state = await temporal.workflow
        .getHandle(transferWorkflowId(transferId))
        .executeUpdate(cancelTransferUpdate, { args: [{ actor, reason, requestId: req.id }] });
      res.status(202).json({ transferId, status: state.phase });
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw problem(409, `the transfer is already ${transfer.status}`);
      throw error;
    }
  });

  /** A clinical director replaces the proposed receiving clinician of one case of the transfer. */
  router.post('/v1/transfers/:transferId/cases/:caseId/proposal', async (req, res) => {
    const actor = actorOf(req);
    const { transferId, caseId } = parse(transferCaseParams, req.params, 'path');
    const { clinicianId } = parse(overrideProposalBody, req.body, 'body');
    requireRoles(userOf(req), PERMISSIONS.overrideProposal, 'overriding a proposal');
    const agencyId = userOf(req).agencyId;
    const proposal = await findProposal(db, agencyId, transferId, caseId);
    if (!proposal)
      return deniedRead(
        db,
        req,
        userOf(req),
        { kind: 'case', id: caseId },
        `no case ${caseId} in transfer ${transferId}`,
      );
    const clinician = await findClinician(db, agencyId, clinicianId);
    // Under the agency's proposal lock: the receiver must have room and every specialty the client needs.
    await db.transaction().execute(async (trx) => {
      await lockProposals(trx, agencyId);
      const [load] = clinician
        ? await receiverLoads(trx, agencyId, {
            exceptClinicianId: proposal.departing_counselor_id,
            onlyClinicianId: clinicianId,
          })
        : [];
      const client = await findClient(trx, agencyId, proposal.client_id);
      refusing(() =>
        checkReceiver({
          clinicianId,
          clinician,
          departingCounselorId: proposal.departing_counselor_id,
          load,
          alreadyProposed: proposal.clinician_id === clinicianId,
          client: { needs: client?.needs ?? [], riskFlags: client?.risk_flags ?? [] },
        }),
      );
      await trx
        .updateTable('proposals')
        .set({ clinician_id: clinicianId, overridden_by: actor.id })
        .where('case_id', '=', caseId)
        .execute();
    });
    let snapshot;
    try {
      snapshot = await temporal.workflow.getHandle(caseWorkflowId(caseId)).executeUpdate(proposeReferralUpdate, {
        args: [
          {
            actor,
            requestId: req.id,
            replace: true,
            candidates: [
              { providerId: clinicianId, name: clinician!.name, external: false, contact: clinician!.contact },
            ],
          },
        ],
      });
    } catch (error) {
      // The case refused (or could not be reached): the earlier proposal stands.
      await db
        .updateTable('proposals')
        .set({ clinician_id: proposal.clinician_id, overridden_by: proposal.overridden_by })
        .where('case_id', '=', caseId)
        .execute();
      throw error;
    }
    res.json({ caseId, clinicianId, step: snapshot.step, waitingFor: snapshot.waitingFor });
  });

  return router;
}
