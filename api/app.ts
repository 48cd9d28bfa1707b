import { randomUUID } from 'node:crypto';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import express, { type Request, type RequestHandler } from 'express';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import swaggerUiDist from 'swagger-ui-dist';
import type { z } from 'zod';
import { appendAuditEvent } from '../db/audit';
import { findCase } from '../db/cases';
import type { CaseRow, Database } from '../db/schema';
import { type Actor, caseWorkflowId } from '../domain/case';
import { cancelCaseUpdate, caseWorkflow } from '../workflows/case';
import { openApiDocument } from './openapi';
import { problem, problemHandler, validationProblem } from './problem';
import { type CaseView, actorHeaders, cancelCaseBody, caseIdParams, createCaseBody } from './schemas';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      id: string;
    }
  }
}

export interface AppDeps {
  db: Kysely<Database>;
  temporal: Client;
  taskQueue: string;
  logger: Logger;
  health: { postgres: () => Promise<boolean>; temporal: () => Promise<boolean> };
}

function parse<T extends z.ZodType>(schema: T, value: unknown, where: 'body' | 'path' | 'header'): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw validationProblem(result.error, where);
  return result.data;
}

function actorOf(req: Request): Actor {
  const result = actorHeaders.safeParse(req.headers);
  if (!result.success) {
    throw problem(401, 'say who is acting: X-Actor-Id and X-Actor-Role headers are required', {
      errors: validationProblem(result.error, 'header').problem.errors,
    });
  }
  return { id: result.data['x-actor-id'], role: result.data['x-actor-role'] };
}

function toView(row: CaseRow): CaseView {
  return {
    caseId: row.case_id,
    workflowId: row.workflow_id,
    status: row.status,
    step: row.step,
    agencyId: row.agency_id,
    clientId: row.client_id,
    counselorId: row.counselor_id,
    kind: row.kind,
    reason: row.reason,
    createdAt: row.created_at.toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

const requestId: RequestHandler = (req, res, next) => {
  const given = req.get('x-request-id');
  req.id = given && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID();
  res.set('X-Request-Id', req.id);
  next();
};

/** The HTTP API, built without listening so tests drive it directly. */
export function createApp(deps: AppDeps): express.Express {
  const { db, temporal, taskQueue, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(requestId);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      // Method, route pattern and status only: paths and bodies may carry client details.
      logger.info({
        reqId: req.id,
        method: req.method,
        route: (req.route as { path?: string } | undefined)?.path ?? 'unmatched',
        status: res.statusCode,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    });
    next();
  });
  app.use(express.json({ limit: '64kb' }));

  /** Liveness of both dependencies; 503 names the one that is down. */
  app.get('/health', async (_req, res) => {
    const [pg, tp] = await Promise.all([deps.health.postgres(), deps.health.temporal()]);
    const body = {
      status: pg && tp ? 'ok' : 'unavailable',
      postgres: pg ? 'ok' : 'unavailable',
      temporal: tp ? 'ok' : 'unavailable',
    };
    res.status(pg && tp ? 200 : 503).json(body);
  });

  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });
  app.use('/docs/assets', express.static(swaggerUiDist.getAbsoluteFSPath(), { index: false }));
  app.get('/docs', (_req, res) => {
    res.type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>handoff API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/docs-init.js"></script></body></html>`);
  });
  app.get('/docs/assets/docs-init.js', (_req, res) => {
    res.type('js').send(`window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#ui' });`);
  });

  /** Starts a case workflow; the case row is written by the workflow's first activity. */
  app.post('/v1/cases', async (req, res) => {
    const actor = actorOf(req);
    const body = parse(createCaseBody, req.body, 'body');
    const caseId = body.caseId ?? randomUUID();
    const workflowId = caseWorkflowId(caseId);
    await temporal.workflow.start(caseWorkflow, {
      workflowId,
      taskQueue,
      args: [{ ...body, caseId, openedBy: actor, requestId: req.id }],
    });
    res
      .status(202)
      .location(`/v1/cases/${caseId}`)
      .json({ caseId, workflowId, status: 'opening', step: 'opening' } satisfies CaseView);
  });

  /** Reads a case from the read model; every read is itself audited. */
  app.get('/v1/cases/:caseId', async (req, res) => {
    const actor = actorOf(req);
    const { caseId } = parse(caseIdParams, req.params, 'path');
    const row = await findCase(db, caseId);
    if (!row) {
      // Started but not yet written by its first activity (or the worker is down): say so.
      const workflowId = caseWorkflowId(caseId);
      try {
        await temporal.workflow.getHandle(workflowId).describe();
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw problem(404, `no case ${caseId}`);
        throw error;
      }
      res.json({ caseId, workflowId, status: 'opening', step: 'opening' } satisfies CaseView);
      return;
    }
    await db.transaction().execute((trx) =>
      appendAuditEvent(trx, {
        eventKey: `${caseId}:viewed:${randomUUID()}`,
        actor,
        action: 'case.viewed',
        caseId,
        clientId: row.client_id,
        outcome: 'done',
        requestId: req.id,
        sourceAddress: req.ip ?? null,
      }),
    );
    res.json(toView(row));
  });

  /** Cancels a case (the move fell through, or client and counselor decided to continue). */
  app.post('/v1/cases/:caseId/cancel', async (req, res) => {
    const actor = actorOf(req);
    const { caseId } = parse(caseIdParams, req.params, 'path');
    const { reason } = parse(cancelCaseBody, req.body, 'body');
    const handle = temporal.workflow.getHandle(caseWorkflowId(caseId));
    try {
      await handle.executeUpdate(cancelCaseUpdate, { args: [{ actor, reason, requestId: req.id }] });
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError)) throw error;
      // The workflow has ended (or never was): the read model says which.
      const ended = await findCase(db, caseId);
      throw ended ? problem(409, `case is already ${ended.status}`) : problem(404, `no case ${caseId}`);
    }
    const row = await findCase(db, caseId);
    if (!row) throw problem(404, `no case ${caseId}`);
    res.json(toView(row));
  });

  app.use((req, _res, next) => next(problem(404, `no route ${req.method} ${req.path}`)));
  app.use(problemHandler(logger));
  return app;
}
