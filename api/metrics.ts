import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { problem } from './problem';

export interface Metrics {
  registry: Registry;
  requests: Histogram<'method' | 'route' | 'status'>;
  workflowStarts: Counter<'workflow'>;
  failures: Counter<'kind'>;
}

/** One registry per app (no global state): request latency by route, workflow starts, failures. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
