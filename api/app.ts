import { randomUUID } from 'node:crypto';
import type { Tracer } from '@opentelemetry/api';
import type { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import express, { type RequestHandler } from 'express';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import swaggerUiDist from 'swagger-ui-dist';
import type { CopyOut } from '../db/database';
import type { Database } from '../db/schema';
import { agencyRoutes } from './agencies';
import { auditRoutes } from './audit';
import { signIn } from './auth';
import { codecBodyParser, codecCors, codecRoutes } from './codec';
import { idempotent } from './idempotency';
import { type Metrics, createMetrics, metricsRoute } from './metrics';
import { caseRoutes } from './cases';
import { listRoutes } from './lists';
import { mailRoutes } from './mail';
import { referenceRoutes } from './reference';
import { taskRoutes } from './tasks';
import { transferRoutes } from './transfers';
import { userRoutes } from './users';
import { webRoutes } from './web';
import { oidcRoutes } from './oidc';
import { openApiDocument } from './openapi';
import { methodNotAllowed } from './methods';
import { routePattern } from './http';
import { traceRequests } from './tracing';
import { HttpProblem, problem, problemHandler } from './problem';
import { appendAuditEvent, auditBacklog } from '../db/audit';
import type { OidcSettings } from '../config';

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
  /** COPY … TO STDOUT on the same database, for exports PostgreSQL writes itself. */
  copyOut: CopyOut;
  temporal: Client;
  taskQueue: string;
  logger: Logger;
  /** Each dependency's liveness; `worker` says whether a worker polls the task queue (absent: not checked). */
  health: { postgres: () => Promise<boolean>; temporal: () => Promise<boolean>; worker?: () => Promise<boolean> };
  /** Requests a minute per token (600 unless given). */
  rateLimitPerMinute?: number;
  /** Requests a minute per client address, counted before the token is checked (3,000 unless given). */
  rateLimitPerAddressPerMinute?: number;
  /** How long an Idempotency-Key is kept; past it, the key makes a new request (24 unless given). */
  idempotencyKeyHours?: number;
  /** Where the audit chain's head is written out of the database. */
  anchorFile?: string;
  metrics?: Metrics;
  /** The bearer token /metrics is scraped with; without one, /metrics is off. */
  metricsToken?: string;
  /** Sign-in through the agency's OpenID provider; absent: API tokens only. */
  oidc?: OidcSettings;
  /** Whether the web page offers pasting an API token (absent: true; main.ts says false in production). */
  devTokens?: boolean;
  /** A span per request (OTEL_EXPORTER_OTLP_ENDPOINT set); absent: no tracing. */
  tracer?: Tracer;
  /** The codec the service's Temporal clients seal payloads with, served at /v1/codec for the Temporal UI and CLI. */
  payloadCodec: PayloadCodec;
  /** Origins (the Temporal UI's) whose pages may call /v1/codec. */
  codecCorsOrigins?: readonly string[];
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
  const metrics = deps.metrics ?? createMetrics({ auditBacklog: () => auditBacklog(db) });
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  if (deps.tracer) app.use(traceRequests(deps.tracer));
  app.use(requestId);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      // Method, route pattern and status only: paths and bodies may carry client details.
      const route = routePattern(req);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info({ reqId: req.id, method: req.method, route, status: res.statusCode, ms, user: req.user?.id });
      metrics.requests.observe({ method: req.method, route, status: String(res.statusCode) }, ms / 1000);
      if (res.statusCode >= 500) metrics.failures.inc({ kind: res.statusCode === 503 ? 'dependency' : 'unexpected' });
      if (res.statusCode === 202 && req.method === 'POST') {
        metrics.workflowStarts.inc({ workflow: req.path.startsWith('/v1/transfers') ? 'caseloadTransfer' : 'case' });
      }
    });
    next();
  });
  app.use('/v1/codec', codecCors(deps.codecCorsOrigins ?? []));
  app.use(methodNotAllowed(app));
  // Every body the API reads is JSON: another one is refused, not ignored as if none had come.
  app.use((req, _res, next) => {
    const length = req.get('content-length');
    const hasBody = req.get('transfer-encoding') !== undefined || (length !== undefined && length !== '0');
    if (hasBody && !req.is('application/json')) {
      throw problem(415, 'the request body must be JSON (Content-Type: application/json)');
    }
    next();
  });
  app.use('/v1/codec', codecBodyParser);
  app.use(express.json({ limit: '64kb' }));

  /**
   * Liveness of PostgreSQL, Temporal and the worker; 503 names what is down. No worker polling means cases stand
   * still however healthy the rest is, so that is a 503 too.
   */
  app.get('/health', async (_req, res) => {
    const [pg, tp, wk] = await Promise.all([
      deps.health.postgres(),
      deps.health.temporal(),
      deps.health.worker ? deps.health.worker() : Promise.resolve(true),
    ]);
    const ok = pg && tp && wk;
    const body = {
      status: ok ? 'ok' : 'unavailable',
      postgres: pg ? 'ok' : 'unavailable',
      temporal: tp ? 'ok' : 'unavailable',
      ...(deps.health.worker ? { worker: wk ? 'ok' : 'unavailable' } : {}),
    };
    res.status(ok ? 200 : 503).json(body);
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

  app.get('/metrics', metricsRoute(metrics, deps.metricsToken));
  app.use(webRoutes());
  app.use(oidcRoutes({ db, logger, oidc: deps.oidc, devTokens: deps.devTokens ?? true }));

  // Everything below needs a signed-in user: the address is counted first, so a flood of bad tokens is throttled
  // before any token counts; then each token has a budget of its own (one round trip for all three).
  app.use(
    signIn(db, {
      perAddressPerMinute: deps.rateLimitPerAddressPerMinute ?? 3000,
      perTokenPerMinute: deps.rateLimitPerMinute ?? 600,
    }),
  );
  // Starts, and actions on a case: a retried call with its Idempotency-Key gets the first answer, applied once.
  app.post(
    ['/v1/cases', '/v1/transfers', '/v1/cases/:caseId/*action'],
    idempotent(db, { retentionHours: deps.idempotencyKeyHours ?? 24 }),
  );
  app.use(caseRoutes({ db, temporal, taskQueue }));
  app.use(listRoutes({ db }));
  app.use(userRoutes({ db }));
  app.use(auditRoutes({ db, copyOut: deps.copyOut, anchorFile: deps.anchorFile ?? '.data/audit-anchors.ndjson' }));
  app.use(agencyRoutes({ db }));
  app.use(mailRoutes({ db }));
  app.use(referenceRoutes({ db, temporal }));
  app.use(transferRoutes({ db, temporal, taskQueue }));
  app.use(taskRoutes({ db }));
  app.use(codecRoutes({ db, codec: deps.payloadCodec }));

  app.use((req, _res, next) => next(problem(404, `no route ${req.method} ${req.path}`)));
  // A refused access is an event too: who tried what, and was told no.
  app.use(async (error: unknown, req: express.Request, _res: express.Response, next: express.NextFunction) => {
    if (error instanceof HttpProblem && error.problem.status === 403 && req.user) {
      const user = req.user;
      await db
        .transaction()
        .execute((trx) =>
          appendAuditEvent(trx, {
            eventKey: `refused:${randomUUID()}`,
            actor: { id: user.id, role: user.role },
            action: `access.${req.method.toLowerCase()}`,
            outcome: 'refused',
            outcomeReason: error.problem.detail,
            requestId: req.id,
            sourceAddress: req.ip ?? null,
            after: { route: (req.route as { path?: unknown } | undefined)?.path ?? null },
          }),
        )
        .catch((auditError: unknown) => logger.error({ err: auditError }, 'could not record a refused access'));
    }
    next(error);
  });
  app.use(problemHandler(logger));
  return app;
}
