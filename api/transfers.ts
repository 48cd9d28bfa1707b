import { randomUUID } from 'node:crypto';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { Router } from 'express';
import { type Kysely, sql } from 'kysely';
import { appendAuditEvent } from '../db/audit';
import { lockProposals, receiverLoads, requiredSpecialties } from '../db/proposals';
import type { Database } from '../db/schema';
import { caseWorkflowId } from '../domain/case';
import { proposeReferralUpdate } from '../workflows/case';
import { cancelTransferUpdate, caseloadTransferWorkflow } from '../workflows/caseload-transfer';
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
    requireRoles(user, ['staff', 'clinical_director'], 'starting a transfer');
    const body = parse(createTransferBody, req.body, 'body');
    const today = new Date().toISOString().slice(0, 10);
    if (body.lastDay < today) {
      throw problem(400, `the counselor's last day (${body.lastDay}) is in the past`, {
        errors: [{ field: 'body.lastDay', message: 'in the past' }],
      });
    }
    const counselor = await db
      .selectFrom('clinicians')
      .select(['clinician_id', 'agency_id'])
      .where('clinician_id', '=', body.counselorId)
      .executeTakeFirst();
    if (!counselor || counselor.agency_id !== user.agencyId)
      throw problem(422, `no counselor ${body.counselorId} is known: import or create the clinician first`, {
        rule: 'unknown_counselor',
      });

    let expected: number;
    if (body.clientIds) {
      const unique = [...new Set(body.clientIds)];
      const onCaseload = await db
        .selectFrom('clients')
        .select('client_id')
        .where('client_id', 'in', unique)
        .where('counselor_id', '=', body.counselorId)
        .where('active', '=', true)
        .execute();
      const found = new Set(onCaseload.map((c) => c.client_id));
      const strangers = unique.filter((id) => !found.has(id));
      if (strangers.length > 0) {
        throw problem(
          422,
          `${strangers.length} client(s) are not on ${body.counselorId}'s active caseload: ${strangers.slice(0, 20).join(', ')}${strangers.length > 20 ? ', …' : ''}`,
          { rule: 'not_on_caseload' },
        );
      }
      expected = unique.length;
    } else {
      const row = await db
        .selectFrom('clients')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('counselor_id', '=', body.counselorId)
        .where('active', '=', true)
        .executeTakeFirstOrThrow();
      expected = Number(row.n);
    }
    if (expected === 0)
      throw problem(422, `${body.counselorId} has no active clients to transfer`, { rule: 'empty_caseload' });

    const transferId = body.transferId ?? randomUUID();
    try {
      // The row and the start stand or fall together: a failed start leaves no transfer behind.
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('transfers')
          .values({
            transfer_id: transferId,
            agency_id: counselor.agency_id,
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
        // Last, so the audit chain's lock is held only for the commit, not across the call to Temporal.
        await appendAuditEvent(trx, {
          eventKey: `transfer:${transferId}:requested`,
          agencyId: counselor.agency_id,
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
      if ((error as { code?: string }).code === '23505') {
        const open = await db
          .selectFrom('transfers')
          .select('transfer_id')
          .where('counselor_id', '=', body.counselorId)
          .where('status', 'in', ['opening', 'open'])
          .executeTakeFirst();
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
    requireRoles(user, ['staff', 'clinical_director', 'compliance'], 'reading a transfer');
    const { transferId } = parse(transferIdParams, req.params, 'path');
    const transfer = await db
      .selectFrom('transfers')
      .selectAll()
      .where('transfer_id', '=', transferId)
      .executeTakeFirst();
    if (!transfer || transfer.agency_id !== user.agencyId) throw problem(404, `no transfer ${transferId}`);
    const ids = (where: ReturnType<typeof sql>) =>
      sql<{
        case_id: string;
      }>`select case_id from cases where transfer_id = ${transferId} and ${where} order by case_id limit ${LIST_CAP}`
        .execute(db)
        .then((r) => r.rows.map((x) => x.case_id));
    const [bySteps, informed, atRisk, escalated, stuck, unmatched] = await Promise.all([
      sql<{
        status: string;
        step: string;
        n: string;
      }>`select status, step, count(*) as n from cases where transfer_id = ${transferId} group by status, step`.execute(
        db,
      ),
      sql<{
        informed: string | null;
        n: string;
      }>`select state->'conversation'->>'informedInTime' as informed, count(*) as n from cases where transfer_id = ${transferId} group by 1`.execute(
        db,
      ),
      ids(
        sql`status = 'open' and step in ('decision_review', 'client_conversation') and notice_due <= current_date + coalesce((state->'policy'->>'noticeWarningDays')::int, 3)`,
      ),
      ids(sql`status = 'open' and jsonb_array_length(coalesce(state->'escalations', '[]'::jsonb)) > 0`),
      ids(sql`status = 'open' and updated_at < now() - make_interval(days => ${STUCK_AFTER_DAYS})`),
      sql<{
        case_id: string;
      }>`select case_id from proposals where transfer_id = ${transferId} and clinician_id is null order by case_id limit ${LIST_CAP}`
        .execute(db)
        .then((r) => r.rows.map((x) => x.case_id)),
    ]);
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
    const casesOpened = Object.values(statuses).reduce((a, b) => a + b, 0);
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
    requireRoles(userOf(req), ['staff', 'clinical_director'], 'cancelling a transfer');
    const { transferId } = parse(transferIdParams, req.params, 'path');
    const { reason } = parse(cancelCaseBody, req.body, 'body');
    const transfer = await db
      .selectFrom('transfers')
      .select(['status', 'agency_id'])
      .where('transfer_id', '=', transferId)
      .executeTakeFirst();
    if (!transfer || transfer.agency_id !== userOf(req).agencyId) throw problem(404, `no transfer ${transferId}`);
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
    requireRoles(userOf(req), ['clinical_director'], 'overriding a proposal');
    const proposal = await db
      .selectFrom('proposals')
      .selectAll()
      .where('case_id', '=', caseId)
      .where('transfer_id', '=', transferId)
      .executeTakeFirst();
    if (!proposal) throw problem(404, `no case ${caseId} in transfer ${transferId}`);
    const transfer = await db
      .selectFrom('transfers')
      .select(['agency_id', 'counselor_id'])
      .where('transfer_id', '=', transferId)
      .executeTakeFirstOrThrow();
    if (transfer.agency_id !== userOf(req).agencyId) throw problem(404, `no case ${caseId} in transfer ${transferId}`);
    const clinician = await db
      .selectFrom('clinicians')
      .selectAll()
      .where('clinician_id', '=', clinicianId)
      .executeTakeFirst();
    if (
      !clinician ||
      clinician.agency_id !== transfer.agency_id ||
      !clinician.active ||
      clinician.clinician_id === transfer.counselor_id
    ) {
      throw problem(422, `${clinicianId} is not an active clinician of this agency who can receive the client`, {
        rule: 'unknown_receiver',
      });
    }
    // Under the agency's proposal lock: the receiver must have room and every specialty the client needs.
    await db.transaction().execute(async (trx) => {
      await lockProposals(trx, transfer.agency_id);
      const [receiver] = await receiverLoads(trx, transfer.agency_id, {
        exceptClinicianId: transfer.counselor_id,
        onlyClinicianId: clinicianId,
      });
      const client = await trx
        .selectFrom('clients')
        .select(['needs', 'risk_flags'])
        .where('client_id', '=', proposal.client_id)
        .executeTakeFirstOrThrow();
      const already = proposal.clinician_id === clinicianId ? 1 : 0;
      if (!receiver || receiver.load - already >= receiver.capacity) {
        throw problem(422, `${clinicianId} has no room left (capacity ${receiver?.capacity ?? 0})`, {
          rule: 'receiver_full',
        });
      }
      const missing = requiredSpecialties(client.needs, client.risk_flags).filter(
        (need) => !receiver.specialties.includes(need),
      );
      if (missing.length > 0) {
        throw problem(422, `${clinicianId} lacks what this client needs: ${missing.join(', ')}`, {
          rule: 'receiver_lacks_specialty',
        });
      }
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
              { providerId: clinician.clinician_id, name: clinician.name, external: false, contact: clinician.contact },
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
