import { randomUUID } from 'node:crypto';
import { type Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { UpdateDefinition } from '@temporalio/common';
import { type Request, Router } from 'express';
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { appendAuditEvent } from '../db/audit';
import { findCase } from '../db/cases';
import type { CaseRow, Database } from '../db/schema';
import { type Actor, type Role, caseWorkflowId } from '../domain/case';
import { canSeeCase, requireRoles, userOf } from './auth';
import { explain } from '../domain/process';
import * as wf from '../workflows/case';
import { derivedUuid } from '../ids';
import { actorOf, parse } from './http';
import { problem } from './problem';
import * as s from './schemas';

export interface CaseRoutesDeps {
  db: Kysely<Database>;
  temporal: Client;
  taskQueue: string;
}

const DIRECTOR: Role[] = ['clinical_director'];
const COUNSELOR_DIRECTOR: Role[] = ['counselor', 'clinical_director'];
const STAFF_DIRECTOR: Role[] = ['staff', 'clinical_director'];
const CARE_TEAM: Role[] = ['staff', 'counselor', 'clinical_director'];
/** Who may read a case: everyone of its agency but admins (counselors only their own). */
export const CASE_READERS: Role[] = ['staff', 'counselor', 'clinical_director', 'compliance'];
export const CASE_STARTERS: Role[] = ['staff', 'counselor', 'clinical_director'];

/** One human action on a case: its path, the roles that may take it, its body, and the workflow update. */
export interface ActionRoute {
  path: string;
  roles: Role[];
  summary: string;
  body: z.ZodType;
  params: typeof s.caseIdParams | typeof s.referralParams | typeof s.consentParams;
  update: UpdateDefinition<wf.CaseSnapshot, [any]>;
}

export const ACTION_ROUTES: ActionRoute[] = [
  {
    path: 'review',
    roles: DIRECTOR,
    summary: 'A clinical director (not the counselor) approves, rejects or sends back the decision',
    body: s.reviewBody,
    params: s.caseIdParams,
    update: wf.reviewDecisionUpdate,
  },
  {
    path: 'revision',
    roles: COUNSELOR_DIRECTOR,
    summary: 'The counselor revises a decision that was sent back',
    body: s.reviseBody,
    params: s.caseIdParams,
    update: wf.reviseDecisionUpdate,
  },
  {
    path: 'risk-flags',
    roles: CARE_TEAM,
    summary: 'Raise a risk flag; closing then waits for a safety plan and a director',
    body: s.riskFlagBody,
    params: s.caseIdParams,
    update: wf.raiseRiskFlagUpdate,
  },
  {
    path: 'safety-plan',
    roles: COUNSELOR_DIRECTOR,
    summary: 'Record that a continuity/safety plan is documented',
    body: s.safetyPlanBody,
    params: s.caseIdParams,
    update: wf.recordSafetyPlanUpdate,
  },
  {
    path: 'safety-plan/approval',
    roles: DIRECTOR,
    summary: 'A clinical director approves the safety plan',
    body: s.emptyBody,
    params: s.caseIdParams,
    update: wf.approveSafetyPlanUpdate,
  },
  {
    path: 'conversation',
    roles: COUNSELOR_DIRECTOR,
    summary: 'Record the pretermination conversation and what the client chose',
    body: s.conversationBody,
    params: s.caseIdParams,
    update: wf.recordConversationUpdate,
  },
  {
    path: 'outreach-attempts',
    roles: COUNSELOR_DIRECTOR,
    summary: 'Record an outreach attempt to a client who did not come',
    body: s.outreachBody,
    params: s.caseIdParams,
    update: wf.recordOutreachAttemptUpdate,
  },
  {
    path: 'conversation/waiver',
    roles: DIRECTOR,
    summary: 'Go on without the conversation (client-initiated ending or clinician safety)',
    body: s.waiveConversationBody,
    params: s.caseIdParams,
    update: wf.waiveConversationUpdate,
  },
  {
    path: 'referrals',
    roles: CARE_TEAM,
    summary: 'Propose receiving clinicians or providers, in order of preference',
    body: s.proposeReferralBody,
    params: s.caseIdParams,
    update: wf.proposeReferralUpdate,
  },
  {
    path: 'referrals/:referralId/response',
    roles: CARE_TEAM,
    summary: 'Record the receiver’s (or the client’s) answer to a referral',
    body: s.referralResponseBody,
    params: s.referralParams,
    update: wf.recordReferralResponseUpdate,
  },
  {
    path: 'referrals/:referralId/appointment',
    roles: CARE_TEAM,
    summary: 'Record the first appointment with the receiver',
    body: s.appointmentBody,
    params: s.referralParams,
    update: wf.scheduleFirstAppointmentUpdate,
  },
  {
    path: 'referrals/:referralId/appointment-outcome',
    roles: CARE_TEAM,
    summary: 'Record whether the first appointment was kept',
    body: s.appointmentOutcomeBody,
    params: s.referralParams,
    update: wf.recordAppointmentOutcomeUpdate,
  },
  {
    path: 'referrals/:referralId/withdrawal',
    roles: STAFF_DIRECTOR,
    summary: 'Withdraw a referral',
    body: s.withdrawReferralBody,
    params: s.referralParams,
    update: wf.withdrawReferralUpdate,
  },
  {
    path: 'consents',
    roles: CARE_TEAM,
    summary: 'Record a release of information',
    body: s.consentBody,
    params: s.caseIdParams,
    update: wf.recordConsentUpdate,
  },
  {
    path: 'consents/:consentId/revocation',
    roles: CARE_TEAM,
    summary: 'Record that the client revoked a release; pending sends stop',
    body: s.emptyBody,
    params: s.consentParams,
    update: wf.revokeConsentUpdate,
  },
  {
    path: 'engagement',
    roles: COUNSELOR_DIRECTOR,
    summary: 'Record whether the client engaged with the new provider',
    body: s.engagementBody,
    params: s.caseIdParams,
    update: wf.recordEngagementUpdate,
  },
  {
    path: 'cancel',
    roles: STAFF_DIRECTOR,
    summary: 'Cancel the case, with a reason',
    body: s.cancelCaseBody,
    params: s.caseIdParams,
    update: wf.cancelCaseUpdate,
  },
];

function toView(row: CaseRow): s.CaseView {
  const { waitingFor, blockers } = row.state ? explain(row.state) : { waitingFor: [], blockers: [] };
  return {
    caseId: row.case_id,
    workflowId: row.workflow_id,
    status: row.status,
    step: row.step as s.CaseView['step'],
    waitingFor,
    blockers,
    agencyId: row.agency_id,
    clientId: row.client_id,
    counselorId: row.counselor_id,
    kind: row.kind,
    reason: row.reason,
    lastDay: row.last_day,
    noticeDue: row.notice_due,
    process: row.state ?? undefined,
    createdAt: row.created_at.toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

function opening(caseId: string): s.CaseView {
  return {
    caseId,
    workflowId: caseWorkflowId(caseId),
    status: 'opening',
    step: 'opening',
    waitingFor: ['the worker to open the case'],
    blockers: [],
  };
}

/** The routes of one case's life: start, read, every human action, the letter. */
export function caseRoutes({ db, temporal, taskQueue }: CaseRoutesDeps): Router {
  const router = Router();

  const auditRead = (req: Request, actor: Actor, row: CaseRow, what: string) =>
    db.transaction().execute((trx) =>
      appendAuditEvent(trx, {
        eventKey: `${row.case_id}:viewed:${randomUUID()}`,
        actor,
        action: `case.viewed.${what}`,
        caseId: row.case_id,
        clientId: row.client_id,
        outcome: 'done',
        requestId: req.id,
        sourceAddress: req.ip ?? null,
      }),
    );

  /** Starts a case workflow; the case row is written by the workflow's first activity. */
  router.post('/v1/cases', async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, CASE_STARTERS, 'starting a case');
    const body = parse(s.createCaseBody, req.body, 'body');
    if (body.agencyId !== user.agencyId)
      throw problem(403, `you act for agency ${user.agencyId}, not ${body.agencyId}`);
    if (user.role === 'counselor' && body.counselorId !== user.id) {
      throw problem(403, 'a counselor starts cases only for their own clients');
    }
    if (body.lastDay && body.lastDay < new Date().toISOString().slice(0, 10)) {
      throw problem(400, `the counselor's last day (${body.lastDay}) is in the past`, {
        errors: [{ field: 'body.lastDay', message: 'in the past' }],
      });
    }
    const open = await db
      .selectFrom('cases')
      .select('case_id')
      .where('client_id', '=', body.clientId)
      .where('status', 'in', ['opening', 'open'])
      .executeTakeFirst();
    if (open)
      throw problem(409, `client ${body.clientId} already has an open case (${open.case_id})`, {
        rule: 'one_open_case',
      });
    // With an Idempotency-Key and no caseId, the id derives from the key: a retried start finds its case.
    const key = req.get('idempotency-key');
    const caseId = body.caseId ?? (key ? derivedUuid(`${userOf(req).id}:${key}`) : randomUUID());
    await temporal.workflow.start(wf.caseWorkflow, {
      workflowId: caseWorkflowId(caseId),
      // A case id is never reused, even after its case ended: its audit keys and read model are its own.
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      taskQueue,
      // Who may see the case before its row is written: ids only, no client details.
      memo: { agencyId: body.agencyId, counselorId: body.counselorId },
      args: [{ ...body, caseId, openedBy: actor, requestId: req.id }],
    });
    res.status(202).location(`/v1/cases/${caseId}`).json(opening(caseId));
  });

  /** Reads a case from the read model, with what it waits for and what blocks closing it; audited. */
  router.get('/v1/cases/:caseId', async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, CASE_READERS, 'reading a case');
    const { caseId } = parse(s.caseIdParams, req.params, 'path');
    const row = await findCase(db, caseId);
    if (!row) {
      // Started but not yet written by its first activity (or the worker is down): say so, to those who may see it.
      let memo: Record<string, unknown> | undefined;
      try {
        memo = (await temporal.workflow.getHandle(caseWorkflowId(caseId)).describe()).memo;
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw problem(404, `no case ${caseId}`);
        throw error;
      }
      const owner = {
        agency_id: typeof memo?.agencyId === 'string' ? memo.agencyId : '',
        counselor_id: typeof memo?.counselorId === 'string' ? memo.counselorId : '',
      };
      if (!canSeeCase(user, owner)) throw problem(404, `no case ${caseId}`);
      res.json(opening(caseId));
      return;
    }
    if (!canSeeCase(user, row)) throw problem(404, `no case ${caseId}`);
    await auditRead(req, actor, row, 'details');
    res.json(toView(row));
  });

  /** The closing letter as HTML or PDF, with its stored checksum; audited. */
  router.get(['/v1/cases/:caseId/letter', '/v1/cases/:caseId/letter.pdf'], async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, CASE_READERS, 'reading a closing letter');
    const { caseId } = parse(s.caseIdParams, req.params, 'path');
    const found = await findCase(db, caseId);
    const row = found && canSeeCase(user, found) ? found : undefined;
    const letter = row && (await db.selectFrom('letters').selectAll().where('case_id', '=', caseId).executeTakeFirst());
    if (!row || !letter) throw problem(404, `no closing letter for case ${caseId}`);
    await auditRead(req, actor, row, 'letter');
    res.set('X-Delivery', letter.delivery);
    if (req.path.endsWith('.pdf')) {
      res.set('X-Checksum-SHA256', letter.pdf_sha256).type('application/pdf').send(letter.pdf);
    } else {
      res.set('X-Checksum-SHA256', letter.html_sha256).type('html').send(letter.html);
    }
  });

  for (const route of ACTION_ROUTES) {
    router.post(`/v1/cases/:caseId/${route.path}`, async (req, res) => {
      const actor = actorOf(req);
      const user = userOf(req);
      requireRoles(user, route.roles, `${route.path.replace(/\/:\w+/g, '')} on a case`);
      const params = parse(route.params, req.params, 'path');
      const { caseId, ...ids } = params;
      // The object first: a case the caller may not see does not exist for them, whatever they sent.
      const owner = await findCase(db, caseId);
      if (!owner || !canSeeCase(user, owner)) throw problem(404, `no case ${caseId}`);
      const body = parse(route.body, req.body, 'body') as object;
      const handle = temporal.workflow.getHandle(caseWorkflowId(caseId));
      try {
        const snapshot = await handle.executeUpdate(route.update, {
          // With an Idempotency-Key a retried action is the same update, answered once; without, each is new.
          updateId: req.get('idempotency-key') ? `${user.id}:${req.get('idempotency-key')}` : randomUUID(),
          args: [{ ...body, ...ids, actor, requestId: req.id }],
        });
        res.json({ ...toViewFromSnapshot(snapshot), workflowId: caseWorkflowId(caseId) });
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) {
          const ended = await findCase(db, caseId);
          throw ended ? problem(409, `case is already ${ended.status}`) : problem(404, `no case ${caseId}`);
        }
        if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
          await recordRefusal(req, actor, owner, route.update.name, error.cause);
        }
        throw error;
      }
    });
  }

  /** A refused action leaves its trace too: who tried what, and the rule that said no. */
  async function recordRefusal(req: Request, actor: Actor, row: CaseRow, action: string, failure: ApplicationFailure) {
    const caseId = row.case_id;
    const rule = (failure.details?.[0] as { rule?: string } | undefined)?.rule ?? failure.type ?? 'refused';
    await db.transaction().execute((trx) =>
      appendAuditEvent(trx, {
        eventKey: `${caseId}:refused:${randomUUID()}`,
        actor,
        action: `action.${action}`,
        caseId,
        clientId: row.client_id,
        outcome: 'refused',
        outcomeReason: `${rule}: ${failure.message}`,
        requestId: req.id,
        sourceAddress: req.ip ?? null,
      }),
    );
  }

  return router;
}

function toViewFromSnapshot(snapshot: wf.CaseSnapshot): Omit<s.CaseView, 'workflowId'> {
  const { facts } = snapshot.state;
  return {
    caseId: snapshot.caseId,
    status: snapshot.status,
    step: snapshot.step,
    waitingFor: snapshot.waitingFor,
    blockers: snapshot.blockers,
    agencyId: facts.agencyId,
    clientId: facts.clientId,
    counselorId: facts.counselorId,
    kind: facts.kind,
    reason: facts.reason,
    lastDay: facts.lastDay,
    process: snapshot.state,
  };
}
