import type { RequestHandler } from 'express';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

export function metricsRoute(metrics: Metrics): RequestHandler {
  return async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  };
}
