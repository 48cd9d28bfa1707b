import { randomUUID } from 'node:crypto';
import { type Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ApplicationFailure } from '@temporalio/common';
import type { UpdateDefinition } from '@temporalio/common';
import { type Request, Router } from 'express';
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { appendAuditEvent, caseTimeline } from '../db/audit';
import { findAgencyCase, findLetter, letterDelivery, releaseReservation, reserveCase } from '../db/cases';
import { addRiskFlag, clientFacts } from '../db/clients';
import { agencyTimeZone } from '../db/policies';
import type { CaseRow, Database } from '../db/schema';
import type { User } from '../db/users';
import { type Actor, STALE_RESERVATION_MS, caseWorkflowId } from '../domain/case';
import { PERMISSIONS, type Permission, canSeeCase } from '../domain/roles';
import { agencyToday, explain } from '../domain/rules/explain';
import { checkOutreachChannel } from '../domain/rules/safe-contact';
import { RuleRefusal } from '../domain/rules/rule';
import { DEFAULT_TIME_ZONE, localDate } from '../domain/time';
import * as wf from '../workflows/case';
import { derivedUuid } from '../ids';
import { requireRoles, userOf } from './auth';
import { tellOpenCases } from './client-facts';
import { deniedRead, recordDeniedRead } from './denied';
import { actorOf, parse } from './http';
import { IDEMPOTENCY_KEY_PATTERN } from './idempotency';
import { problem } from './problem';
import * as s from './schemas';

export interface CaseRoutesDeps {
  db: Kysely<Database>;
  temporal: Client;
  taskQueue: string;
}

/** Who may read a case: everyone of its agency but admins (counselors only their own). */
export const CASE_READERS = PERMISSIONS.readCase;
export const CASE_STARTERS = PERMISSIONS.startCase;
/** The newest events a timeline shows; the full trail is the compliance export's. */
export const TIMELINE_LIMIT = 1000;

/** One human action on a case: its path, the permission (role matrix) it needs, its body, and the workflow update. */
export interface ActionRoute {
  path: string;
  permission: Permission;
  summary: string;
  body: z.ZodType;
  params: typeof s.caseIdParams | typeof s.referralParams | typeof s.consentParams;
  update: UpdateDefinition<wf.CaseSnapshot, [any]>;
  /** Runs before the update, on the agency's records as they stand now (a rule checked at the moment it acts). */
  before?: (ctx: ActionContext) => Promise<void>;
}

export interface ActionContext {
  db: Kysely<Database>;
  temporal: Client;
  user: User;
  actor: Actor;
  row: CaseRow;
  body: any;
  requestId: string;
}

export const ACTION_ROUTES: ActionRoute[] = [
  {
    path: 'review',
    permission: 'reviewDecision',
    summary: 'A clinical director (not the counselor) approves, rejects or sends back the decision',
    body: s.reviewBody,
    params: s.caseIdParams,
    update: wf.reviewDecisionUpdate,
  },
  {
    path: 'revision',
    permission: 'reviseDecision',
    summary: 'The counselor revises a decision that was sent back',
    body: s.reviseBody,
    params: s.caseIdParams,
    update: wf.reviseDecisionUpdate,
  },
  {
    path: 'risk-flags',
    permission: 'raiseRiskFlag',
    summary:
      "Raise a risk flag on the client's record; every open case of the client then waits for a safety plan and a director",
    body: s.riskFlagBody,
    params: s.caseIdParams,
    // The flag is a fact of the client record: written there, then every open case re-reads it.
    update: wf.refreshFactsUpdate,
    before: raiseFlagOnRecord,
  },
  {
    path: 'safety-plan',
    permission: 'recordSafetyPlan',
    summary: 'Record that a continuity/safety plan is documented',
    body: s.safetyPlanBody,
    params: s.caseIdParams,
    update: wf.recordSafetyPlanUpdate,
  },
  {
    path: 'safety-plan/approval',
    permission: 'approveSafetyPlan',
    summary: 'A clinical director approves the safety plan',
    body: s.emptyBody,
    params: s.caseIdParams,
    update: wf.approveSafetyPlanUpdate,
  },
  {
    path: 'conversation',
    permission: 'recordConversation',
    summary: 'Record the pretermination conversation and what the client chose',
    body: s.conversationBody,
    params: s.caseIdParams,
    update: wf.recordConversationUpdate,
  },
  {
    path: 'outreach-attempts',
    permission: 'recordOutreachAttempt',
    summary: 'Record an outreach attempt to a client who did not come',
    body: s.outreachBody,
    params: s.caseIdParams,
    update: wf.recordOutreachAttemptUpdate,
    before: async ({ db, row, body }) => {
      // Safe contact on the record as it stands now, not as the case last read it.
      const facts = await clientFacts(db, row.agency_id, row.client_id);
      if (facts) checkOutreachChannel(facts, (body as s.OutreachBody).channel);
    },
  },
  {
    path: 'conversation/waiver',
    permission: 'waiveConversation',
    summary: 'Go on without the conversation (client-initiated ending or clinician safety)',
    body: s.waiveConversationBody,
    params: s.caseIdParams,
    update: wf.waiveConversationUpdate,
  },
  {
    path: 'referrals',
    permission: 'proposeReferral',
    summary: 'Propose receiving clinicians or providers, in order of preference',
    body: s.proposeReferralBody,
    params: s.caseIdParams,
    update: wf.proposeReferralUpdate,
  },
  {
    path: 'referrals/:referralId/response',
    permission: 'recordReferralResponse',
    summary: 'Record the receiver’s (or the client’s) answer to a referral',
    body: s.referralResponseBody,
    params: s.referralParams,
    update: wf.recordReferralResponseUpdate,
  },
  {
    path: 'referrals/:referralId/appointment',
    permission: 'scheduleFirstAppointment',
    summary: 'Record the first appointment with the receiver',
    body: s.appointmentBody,
    params: s.referralParams,
    update: wf.scheduleFirstAppointmentUpdate,
  },
  {
    path: 'referrals/:referralId/appointment-outcome',
    permission: 'recordAppointmentOutcome',
    summary: 'Record whether the first appointment was kept',
    body: s.appointmentOutcomeBody,
    params: s.referralParams,
    update: wf.recordAppointmentOutcomeUpdate,
  },
  {
    path: 'referrals/:referralId/withdrawal',
    permission: 'withdrawReferral',
    summary: 'Withdraw a referral',
    body: s.withdrawReferralBody,
    params: s.referralParams,
    update: wf.withdrawReferralUpdate,
  },
  {
    path: 'consents',
    permission: 'recordConsent',
    summary: 'Record a release of information',
    body: s.consentBody,
    params: s.caseIdParams,
    update: wf.recordConsentUpdate,
  },
  {
    path: 'consents/:consentId/revocation',
    permission: 'revokeConsent',
    summary: 'Record that the client revoked a release; pending sends stop',
    body: s.emptyBody,
    params: s.consentParams,
    update: wf.revokeConsentUpdate,
  },
  {
    path: 'engagement',
    permission: 'recordEngagement',
    summary: 'Record whether the client engaged with the new provider',
    body: s.engagementBody,
    params: s.caseIdParams,
    update: wf.recordEngagementUpdate,
  },
  {
    path: 'cancel',
    permission: 'cancelCase',
    summary: 'Cancel the case, with a reason',
    body: s.cancelCaseBody,
    params: s.caseIdParams,
    update: wf.cancelCaseUpdate,
  },
];

async function raiseFlagOnRecord({ db, temporal, actor, row, body, requestId }: ActionContext): Promise<void> {
  const { flag } = body as { flag: s.RiskFlagBody['flag'] };
  await db.transaction().execute(async (trx) => {
    const before = await addRiskFlag(trx, row.agency_id, row.client_id, flag);
    if (!before) return;
    await appendAuditEvent(trx, {
      eventKey: `client:${row.client_id}:${randomUUID()}`,
      agencyId: row.agency_id,
      actor,
      action: 'client.risk_flag_raised',
      caseId: row.case_id,
      clientId: row.client_id,
      outcome: 'done',
      requestId,
      before: { riskFlags: before },
      after: { riskFlags: [...before, flag] },
    });
  });
  await tellOpenCases(db, temporal, row.agency_id, [row.client_id], { requestId, exceptCaseId: row.case_id });
}

function toView(row: CaseRow): s.CaseView {
  if (row.status === 'opening') return opening(row.case_id);
  const today = row.state ? agencyToday(row.state, Date.now()) : localDate(Date.now(), DEFAULT_TIME_ZONE);
  const { waitingFor, blockers } = row.state ? explain(row.state, today) : { waitingFor: [], blockers: [] };
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
    appendAuditEvent(db, {
      eventKey: `${row.case_id}:viewed:${randomUUID()}`,
      agencyId: row.agency_id,
      actor,
      action: `case.viewed.${what}`,
      caseId: row.case_id,
      clientId: row.client_id,
      outcome: 'done',
      requestId: req.id,
      sourceAddress: req.ip ?? null,
    });

  /** The caller's own case, or an audited 404 that tells them nothing more. */
  const caseInScope = async (req: Request, user: User, caseId: string, what: string): Promise<CaseRow> => {
    const row = await findAgencyCase(db, user.agencyId, caseId);
    if (row && canSeeCase(user, { agencyId: row.agency_id, counselorId: row.counselor_id })) return row;
    return deniedRead(db, req, user, { kind: 'case', id: caseId }, `no ${what} ${caseId}`);
  };

  /**
   * Starts a case for a client of the caller's agency. The client's facts come from the record; the case row
   * is reserved first, so a second start for the same client is refused at once (one open case per client).
   */
  router.post('/v1/cases', async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, CASE_STARTERS, 'starting a case');
    const body = parse(s.createCaseBody, req.body, 'body');
    const client = await clientFacts(db, user.agencyId, body.clientId);
    // A counselor's caseload is all they may start from; any other client is as unknown as a missing one.
    if (!client || (user.role === 'counselor' && client.counselorId !== user.id)) {
      const detail =
        user.role === 'counselor'
          ? `no client ${body.clientId} on your caseload`
          : `no client ${body.clientId} in your agency: create it first (PUT /v1/clients/${body.clientId})`;
      await recordDeniedRead(db, req, user, { kind: 'client', id: body.clientId }, detail);
      throw problem(422, detail, { errors: [{ field: 'body.clientId', message: 'unknown client' }] });
    }
    const today = localDate(Date.now(), await agencyTimeZone(db, user.agencyId));
    if (body.lastDay && body.lastDay < today) {
      throw problem(400, `the counselor's last day (${body.lastDay}) is in the past`, {
        errors: [{ field: 'body.lastDay', message: 'in the past' }],
      });
    }
    // With an Idempotency-Key the id derives from the agency, the user and the key: a retried start finds its case.
    const key = req.get('idempotency-key');
    const caseId = key ? derivedUuid(`case:${user.agencyId}:${user.id}:${key}`) : randomUUID();
    const reservation = {
      case_id: caseId,
      agency_id: user.agencyId,
      client_id: body.clientId,
      counselor_id: client.counselorId,
      kind: body.kind,
      reason: body.reason,
      status: 'opening' as const,
      step: 'opening',
      workflow_id: caseWorkflowId(caseId),
      opened_by: actor.id,
      last_day: body.lastDay ?? null,
    };
    let reserved = await reserveCase(db, reservation);
    if (reserved.outcome === 'client_has_open_case' && reserved.status === 'opening') {
      // A reservation whose start never reached Temporal (the API died in between) is given up after a while.
      if (Date.now() - reserved.createdAt.getTime() > STALE_RESERVATION_MS) {
        const exists = await temporal.workflow
          .getHandle(caseWorkflowId(reserved.caseId))
          .describe()
          .then(
            () => true,
            (error: unknown) => {
              if (error instanceof WorkflowNotFoundError) return false;
              throw error;
            },
          );
        if (!exists && (await releaseReservation(db, user.agencyId, reserved.caseId))) {
          reserved = await reserveCase(db, reservation);
        }
      }
    }
    if (reserved.outcome === 'client_has_open_case') {
      throw problem(409, `client ${body.clientId} already has an open case (${reserved.caseId})`, {
        rule: 'one_open_case',
      });
    }
    const input: wf.CaseInput = {
      caseId,
      agencyId: user.agencyId,
      clientId: body.clientId,
      kind: body.kind,
      reason: body.reason,
      lastDay: body.lastDay ?? null,
      proposedCandidates: body.proposedReceivers ?? [],
      openedBy: actor,
      requestId: req.id,
    };
    try {
      await temporal.workflow.start(wf.caseWorkflow, {
        workflowId: caseWorkflowId(caseId),
        // A case id is never reused, even after its case ended: its audit keys and read model are its own.
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        taskQueue,
        // Who may see the case before its row is opened: ids only, no client details.
        memo: { agencyId: user.agencyId, counselorId: client.counselorId },
        args: [input],
      });
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) {
        // Nothing started: the reservation goes, so the client is not blocked by a case that does not exist.
        if (reserved.outcome === 'reserved') await releaseReservation(db, user.agencyId, caseId);
        throw error;
      }
    }
    res.status(202).location(`/v1/cases/${caseId}`).json(opening(caseId));
  });

  /** Reads a case from the read model, with what it waits for and what blocks closing it; audited. */
  router.get('/v1/cases/:caseId', async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, CASE_READERS, 'reading a case');
    const { caseId } = parse(s.caseIdParams, req.params, 'path');
    const row = await caseInScope(req, user, caseId, 'case');
    await auditRead(req, actor, row, 'details');
    const view = toView(row);
    // The letter left (or failed) after the workflow issued it: the letters table knows where it stands.
    const letter = row.state?.letter ? await letterDelivery(db, caseId) : undefined;
    if (letter && row.state?.letter) view.process = { ...row.state, letter: { ...row.state.letter, delivery: letter } };
    res.json(view);
  });

  /** Every step of the case from the audit trail (who, role, what, when, outcome), oldest first; audited. */
  router.get('/v1/cases/:caseId/timeline', async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, CASE_READERS, "reading a case's timeline");
    const { caseId } = parse(s.caseIdParams, req.params, 'path');
    const row = await caseInScope(req, user, caseId, 'case');
    await auditRead(req, actor, row, 'timeline');
    const { events, truncated } = await caseTimeline(db, row.agency_id, caseId, TIMELINE_LIMIT);
    res.json({
      caseId,
      events: events.map((e) => ({
        seq: String(e.seq),
        at: e.occurred_at.toISOString(),
        actorId: e.actor_id,
        actorRole: e.actor_role,
        action: e.action,
        outcome: e.outcome,
        reason: e.outcome_reason,
      })),
      truncated,
    });
  });

  /** The closing letter as HTML or PDF, with its stored checksum; audited. */
  router.get(['/v1/cases/:caseId/letter', '/v1/cases/:caseId/letter.pdf'], async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, CASE_READERS, 'reading a closing letter');
    const { caseId } = parse(s.caseIdParams, req.params, 'path');
    const row = await caseInScope(req, user, caseId, 'closing letter for case');
    const letter = await findLetter(db, caseId);
    if (!letter) throw problem(404, `no closing letter for case ${caseId}`);
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
      requireRoles(user, PERMISSIONS[route.permission], `${route.path.replace(/\/:\w+/g, '')} on a case`);
      const params = parse(route.params, req.params, 'path');
      const { caseId, ...ids } = params;
      const key = req.get('idempotency-key');
      if (key !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(key)) {
        throw problem(400, 'Idempotency-Key must be 1-200 visible ASCII characters', { type: '/problems/validation' });
      }
      // The object first: a case the caller may not see does not exist for them, whatever they sent.
      const owner = await caseInScope(req, user, caseId, 'case');
      const body = parse(route.body, req.body, 'body') as object;
      if (owner.status !== 'opening' && owner.status !== 'open') throw problem(409, `case is already ${owner.status}`);
      const handle = temporal.workflow.getHandle(caseWorkflowId(caseId));
      try {
        await route.before?.({ db, temporal, user, actor, row: owner, body, requestId: req.id });
        // With an Idempotency-Key a retried action is the same action: Temporal answers a repeated update id once,
        // and the case itself remembers the action id (across a lost answer, a restart, a continue-as-new).
        const actionId = key ? `${user.id}:${key}` : null;
        const snapshot = await handle.executeUpdate(route.update, {
          updateId: actionId ?? randomUUID(),
          args: [{ ...body, ...ids, actor, requestId: req.id, actionId }],
        });
        res.json({ ...toViewFromSnapshot(snapshot), workflowId: caseWorkflowId(caseId) });
      } catch (error) {
        if (error instanceof RuleRefusal) {
          await recordRefusal(req, actor, owner, route.update.name, error.rule, error.message);
          throw problem(422, error.message, { rule: error.rule, type: '/problems/RuleViolation' });
        }
        if (error instanceof WorkflowNotFoundError) {
          const ended = await findAgencyCase(db, user.agencyId, caseId);
          throw ended ? problem(409, `case is already ${ended.status}`) : problem(404, `no case ${caseId}`);
        }
        if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
          const failure = error.cause;
          const rule = (failure.details?.[0] as { rule?: string } | undefined)?.rule ?? failure.type ?? 'refused';
          await recordRefusal(req, actor, owner, route.update.name, rule, failure.message);
        }
        throw error;
      }
    });
  }

  /** A refused action leaves its trace too: who tried what, and the rule that said no. */
  async function recordRefusal(
    req: Request,
    actor: Actor,
    row: CaseRow,
    action: string,
    rule: string,
    message: string,
  ) {
    const caseId = row.case_id;
    await appendAuditEvent(db, {
      eventKey: `${caseId}:refused:${randomUUID()}`,
      agencyId: row.agency_id,
      actor,
      action: `action.${action}`,
      caseId,
      clientId: row.client_id,
      outcome: 'refused',
      outcomeReason: `${rule}: ${message}`,
      requestId: req.id,
      sourceAddress: req.ip ?? null,
    });
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
