// Not a workflow: the tracing interceptors, bundled into the workflow code only when tracing is on (telemetry.ts).
// The package's workflow module goes first: it sets up what OpenTelemetry needs in the sandbox.
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import { SpanExporter } from '@temporalio/interceptors-opentelemetry/lib/workflow/span-exporter';
import { BasicTracerProvider, type IdGenerator, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { type WorkflowInterceptorsFactory, workflowInfo } from '@temporalio/workflow';

// The package's tracer draws span ids from Math.random, which in a workflow is the seeded random uuid4() draws from
// too: with tracing turned on or off, a running case would replay other ids (a referral's) than it recorded. These
// ids come from the run id and a counter and leave that sequence alone, so tracing can change under running cases.
let issued = 0;
const next = () => (++issued >>> 0).toString(16).padStart(8, '0');
const run = () => workflowInfo().runId.replace(/-/g, '').padEnd(32, '0');
const ids: IdGenerator = {
  generateTraceId: () => `${run().slice(0, 24)}${next()}`,
  generateSpanId: () => `${run().slice(24, 32)}${next()}`,
};

const tracer = new BasicTracerProvider({
  idGenerator: ids,
  spanProcessors: [new SimpleSpanProcessor(new SpanExporter())],
}).getTracer('@temporalio/interceptor-workflow');

class Inbound extends OpenTelemetryInboundInterceptor {
  protected override readonly tracer = tracer;
}

class Outbound extends OpenTelemetryOutboundInterceptor {
  protected override readonly tracer = tracer;
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new Inbound()],
  outbound: [new Outbound()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
