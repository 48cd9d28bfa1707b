import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Worker } from '@temporalio/worker';
import pino from 'pino';
import { type RunningApi, startApi } from '../api/main';
import { loadConfig, requireConnections } from '../config';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { freePort } from '../scripts/dev-services';
import { type Tracing, startTracing } from '../telemetry';
import { type RunningWorker, startWorker } from '../worker/main';
import { COUNSELOR, DIRECTOR, STAFF, caseIdOf, today } from './support/cases';
import { TEST_DIR, testContext } from './support/context';
import { testDataConverter } from './support/payload-keys';
import { type TestActor, eventually, send, tokenFor } from './support/stack';

/** A span as the OTLP/HTTP JSON protocol carries it, with its resource's service name. */
interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
}

const SPAN_KIND_SERVER = 2;

/** A collector of our own: takes what the exporter POSTs to /v1/traces and keeps every span and every body. */
async function startOtlpReceiver(): Promise<{
  url: string;
  spans: ReceivedSpan[];
  bodies: string[];
  close(): Promise<void>;
}> {
  const spans: ReceivedSpan[] = [];
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const raw = Buffer.concat(chunks);
      const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
      bodies.push(text);
      const body = JSON.parse(text) as {
        resourceSpans?: {
          resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
          scopeSpans?: { spans?: Omit<ReceivedSpan, 'service'>[] }[];
        }[];
      };
      for (const { resource, scopeSpans } of body.resourceSpans ?? []) {
        const service = resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const scope of scopeSpans ?? []) for (const span of scope.spans ?? []) spans.push({ service, ...span });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    bodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// Distinctive, so a leak into any span (name, attribute, event) is found by a plain search of what was received.
const CLIENT = {
  name: 'Quillon Vantablack-Osei',
  riskFlag: 'domestic_violence',
  email: 'quillon.vantablack@trace-leak.example',
};

let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
let tracing: Tracing;
let worker: RunningWorker;
let api: RunningApi;
let database: DatabaseHandle;
let metricsAddress: string;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  metricsAddress = `127.0.0.1:${await freePort()}`;
  const context = testContext();
  const config = requireConnections(
    loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: context.databaseUrl,
      TEMPORAL_ADDRESS: context.temporalAddress,
      TEMPORAL_TASK_QUEUE: `telemetry-${randomUUID()}`,
      DATA_DIR: join(TEST_DIR, 'telemetry'),
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      WORKER_METRICS_ADDRESS: metricsAddress,
    }),
  );
  const logger = pino({ level: 'silent' });
  tracing = (await startTracing(config, 'handoff-test'))!;
  // No WORKFLOW_BUNDLE: the worker bundles the workflows with the tracing interceptors, as production does.
  worker = await startWorker(config, logger, tracing);
  api = await startApi(config, logger, tracing);
  database = openDatabase(context.databaseUrl);
}, 180_000);

afterAll(async () => {
  await api?.close();
  await worker?.stop();
  await tracing?.shutdown();
  await database?.close();
  await receiver?.close();
});

async function request(method: string, path: string, actor: TestActor, body?: unknown) {
  return send<any>(api.url, method, path, { body, token: await tokenFor(database.db, actor) });
}

function inTrace(traceId: string, pattern: RegExp): ReceivedSpan | undefined {
  return receiver.spans.find((span) => span.traceId === traceId && pattern.test(span.name));
}

test('when a case is started and reviewed through the API with tracing on, then the request, the workflow start, the workflow and its activities share one trace, and no span carries the client’s name, risk flag or email', async () => {
  const clientId = `client-${randomUUID().slice(0, 8)}`;
  const record = await request('PUT', `/v1/clients/${clientId}`, STAFF, {
    name: CLIENT.name,
    counselorId: 'counselor-1',
    active: true,
    riskFlags: [CLIENT.riskFlag],
    contact: { channels: [{ channel: 'email', safe: true }], noContactAtHome: false, email: CLIENT.email },
    hasSubstanceUseRecords: false,
    needs: [],
  });
  expect([200, 201]).toContain(record.status);
  const start = await request('POST', '/v1/cases', STAFF, {
    clientId,
    kind: 'transfer',
    reason: 'counselor_relocation',
    lastDay: today(45),
  });
  expect(start.status).toBe(202);
  const caseId = caseIdOf(start);
  await eventually(async () => {
    const view = await request('GET', `/v1/cases/${caseId}`, STAFF);
    return view.status === 200 && view.body.status === 'open';
  });
  // The risk flag asks for an approved safety plan before the decision is approved.
  const plan = await request('POST', `/v1/cases/${caseId}/safety-plan`, COUNSELOR, { documentRef: 'EHR plan 1' });
  expect(plan.status).toBe(200);
  expect((await request('POST', `/v1/cases/${caseId}/safety-plan/approval`, DIRECTOR, {})).status).toBe(200);
  const review = await request('POST', `/v1/cases/${caseId}/review`, DIRECTOR, {
    decision: 'approve',
    rationale: 'the counselor relocates',
  });
  expect(review.status).toBe(200);

  // The batch processor sends every few seconds.
  const startTrace = await eventually(async () => {
    const http = receiver.spans.find((s) => s.name === 'POST /v1/cases' && s.kind === SPAN_KIND_SERVER);
    return (
      http &&
      inTrace(http.traceId, /^StartWorkflow:caseWorkflow$/) &&
      inTrace(http.traceId, /^StartActivity:/) &&
      inTrace(http.traceId, /^RunActivity:/) &&
      http
    );
  }, 30_000);
  expect(startTrace.attributes).toEqual(
    expect.arrayContaining([
      { key: 'http.route', value: { stringValue: '/v1/cases' } },
      { key: 'http.response.status_code', value: { intValue: 202 } },
    ]),
  );
  expect(inTrace(startTrace.traceId, /^StartWorkflow:/)!.parentSpanId).toBe(startTrace.spanId);

  const reviewTrace = await eventually(async () => {
    const http = receiver.spans.find((s) => /^POST \/v1\/cases\/:\w+\/review$/.test(s.name));
    return http && inTrace(http.traceId, /^StartWorkflowUpdate:/) && inTrace(http.traceId, /^HandleUpdate:/) && http;
  }, 30_000);
  expect(reviewTrace.kind).toBe(SPAN_KIND_SERVER);

  const received = receiver.bodies.join('\n');
  expect(received).toContain(caseId);
  for (const detail of [CLIENT.name, ...CLIENT.name.split(/[ -]/), CLIENT.riskFlag, CLIENT.email, 'trace-leak']) {
    expect(received).not.toContain(detail);
  }
});

test('when WORKER_METRICS_ADDRESS is set, then the worker serves the Temporal SDK’s metrics there for Prometheus', async () => {
  const body = await eventually(async () => {
    const res = await fetch(`http://${metricsAddress}/metrics`).catch(() => null);
    const text = res?.ok ? await res.text() : '';
    return /^temporal_\w+/m.test(text) && text;
  });
  expect(body).toMatch(/^temporal_worker_start\b|^temporal_\w*poll\w*/m);
});

test('when tracing is turned on for a worker on the prebuilt workflow bundle (the image), then its workflow code is the same and every recorded history replays on it', async () => {
  const dir = join(__dirname, 'histories');
  const histories = readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .map((file) => ({
      workflowId: file.replace(/\.json$/, ''),
      history: JSON.parse(readFileSync(join(dir, file), 'utf8')) as unknown,
    }));
  expect(histories.length).toBeGreaterThanOrEqual(6);
  const failures: string[] = [];
  // As startWorker does with WORKFLOW_BUNDLE and tracing on: the worker's tracing options beside a bundle made
  // without the workflow interceptors (the SDK ignores workflowModules next to a bundle).
  for await (const result of Worker.runReplayHistories(
    {
      workflowBundle: { codePath: testContext().workflowBundlePath },
      dataConverter: testDataConverter(),
      ...tracing.workerOptions,
    },
    histories as never,
  )) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
}, 120_000);
