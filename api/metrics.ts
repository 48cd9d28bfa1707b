import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { problem } from './problem';

export interface Metrics {
  registry: Registry;
  requests: Histogram<'method' | 'route' | 'status'>;
  workflowStarts: Counter<'workflow'>;
  failures: Counter<'kind'>;
}

/** What the audit trail has written and not chained yet: an integrator that stopped shows here first. */
export type AuditBacklog = () => Promise<{ events: number; oldestSeconds: number }>;

/**
 * One registry per app (no global state): request latency by route, workflow starts, failures, and, given a way
 * to read it, the audit trail's backlog (read at each scrape).
 */
export function createMetrics(options: { auditBacklog?: AuditBacklog } = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const { auditBacklog } = options;
  if (auditBacklog) {
    // One read per scrape, shared by the two gauges; a database that does not answer leaves them as they were
    // rather than failing the whole scrape (the request metrics say what else is wrong).
    let reading: Promise<{ events: number; oldestSeconds: number } | null> | null = null;
    const read = () =>
      (reading ??= auditBacklog()
        .catch(() => null)
        .finally(() => setTimeout(() => (reading = null), 1_000).unref()));
    new Gauge({
      name: 'handoff_audit_pending_events',
      help: 'Audit events written and not yet chained (the workers chain them every second)',
      registers: [registry],
      async collect() {
        const backlog = await read();
        if (backlog) this.set(backlog.events);
      },
    });
    new Gauge({
      name: 'handoff_audit_pending_oldest_seconds',
      help: 'Age of the oldest audit event not yet chained; alert when it grows (no worker is chaining)',
      registers: [registry],
      async collect() {
        const backlog = await read();
        if (backlog) this.set(backlog.oldestSeconds);
      },
    });
  }
  return {
    registry,
    requests: new Histogram({
      name: 'handoff_http_request_duration_seconds',
      help: 'HTTP request latency by route pattern',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    workflowStarts: new Counter({
      name: 'handoff_workflow_starts_total',
      help: 'Workflows started through the API',
      labelNames: ['workflow'],
      registers: [registry],
    }),
    failures: new Counter({
      name: 'handoff_failures_total',
      help: 'Requests that ended in a 5xx, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
  };
}

/**
 * /metrics only for the scraper that holds the metrics token (compared in constant time); without a configured
 * token the route is off, since latency by route and failure counts are nobody else's business.
 */
export function metricsRoute(metrics: Metrics, token: string | undefined): RequestHandler {
  const expected = token ? createHash('sha256').update(token).digest() : null;
  const guarded = metricsRouteOpen(metrics);
  return async (req, res, next) => {
    if (!expected) throw problem(404, 'metrics are off: set METRICS_TOKEN to scrape them');
    const given = /^Bearer (.{1,500})$/.exec(req.get('authorization') ?? '')?.[1];
    const digest = createHash('sha256')
      .update(given ?? '')
      .digest();
    if (!given || !timingSafeEqual(digest, expected)) throw problem(401, 'scraping /metrics needs the metrics token');
    return guarded(req, res, next);
  };
}

function metricsRouteOpen(metrics: Metrics): RequestHandler {
  return async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  };
}
