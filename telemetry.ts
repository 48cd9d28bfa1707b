import type { Tracer } from '@opentelemetry/api';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import type { WorkerOptions } from '@temporalio/worker';
import type { Config } from './config';

/** The workflow interceptors, bundled into the workflow code when tracing is on (they run in the sandbox). */
export const WORKFLOW_TRACING_MODULE = require.resolve('./workflows/tracing-interceptors');

/** Tracing, when OTEL_EXPORTER_OTLP_ENDPOINT is set: what the API, the worker and their Temporal clients wire in. */
export interface Tracing {
  /** The HTTP layer's tracer. */
  tracer: Tracer;
  /** For every Temporal client: a start, update or signal carries the active trace into the workflow. */
  clientInterceptors: WorkflowClientInterceptor[];
  /** For the worker: workflow and activity spans; the workflow's leave the sandbox through a sink. */
  workerOptions: Required<Pick<WorkerOptions, 'interceptors' | 'sinks'>>;
  /** Sends the spans still buffered, then stops tracing. */
  shutdown: () => Promise<void>;
}

/**
 * Starts tracing for this process, before anything else runs; undefined (and nothing of OpenTelemetry's SDK
 * loaded) when OTEL_EXPORTER_OTLP_ENDPOINT is unset. Spans carry ids and names of steps, never request bodies.
 */
export async function startTracing(config: Config, serviceName: string): Promise<Tracing | undefined> {
  const endpoint = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return undefined;
  const [otel, { AsyncLocalStorageContextManager }, sdk, { OTLPTraceExporter }, { Resource }, temporal] =
    await Promise.all([
      import('@opentelemetry/api'),
      import('@opentelemetry/context-async-hooks'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@temporalio/interceptors-opentelemetry'),
    ]);
  const resource = new Resource({ 'service.name': config.OTEL_SERVICE_NAME ?? serviceName });
  // The URL is given, so the exporter does not read the environment: config.ts is the only reader.
  const processor = new sdk.BatchSpanProcessor(
    new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces` }),
  );
  const provider = new sdk.BasicTracerProvider({ resource, spanProcessors: [processor] });
  // Global, as the Temporal interceptors read the active context and propagator from @opentelemetry/api.
  provider.register({ contextManager: new AsyncLocalStorageContextManager() });
  const tracer = provider.getTracer('handoff');
  return {
    tracer,
    clientInterceptors: [new temporal.OpenTelemetryWorkflowClientInterceptor({ tracer })],
    workerOptions: {
      interceptors: {
        workflowModules: [WORKFLOW_TRACING_MODULE],
        activity: [
          (ctx) => ({
            inbound: new temporal.OpenTelemetryActivityInboundInterceptor(ctx, { tracer }),
            outbound: new temporal.OpenTelemetryActivityOutboundInterceptor(ctx),
          }),
        ],
      },
      sinks: { exporter: temporal.makeWorkflowExporter(processor, resource) },
    },
    async shutdown() {
      await provider.shutdown();
      otel.trace.disable();
      otel.context.disable();
      otel.propagation.disable();
    },
  };
}
