import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { send, tokenFor } from '../tests/support/stack';
import { type Benchmark, type RunResult, waitFor } from './benchmark';
import { type ChildService, type Services, stopOnFailure } from './services';
import { startTransfer, untilStarted } from './transfer';

interface ReadState {
  services: Services;
  worker: ChildService;
  api: ChildService;
  bareServer: ChildService;
  caseIds: string[];
  token: string;
}

interface ReadSize {
  /** Requests a second, sent whether or not the answers have come (open loop). */
  rate: number;
  seconds: number;
  /** The transfer that runs while the reads do. */
  transferClients: number;
  /** The cases read, picked in turn. */
  readable: number;
}

/** The value below which `share` of the sorted samples fall (nearest rank). */
function percentile(sorted: number[], share: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)]!;
}

/**
 * GET /v1/cases/:id at `rate` a second for `seconds` against `url`, while a fresh transfer runs through the API.
 * Latencies are autocannon's own measure of each answer (fractional ms). Each connection sends one request every
 * two seconds, so an answer slower than that is what would hold the next one back (then the achieved rate, reported
 * beside, falls short of the rate asked for).
 */
async function readWhileTransferring(state: ReadState, size: ReadSize, url: string): Promise<RunResult> {
  const { services } = state;
  const transfer = await startTransfer(services.db, state.api, size.transferClients);
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let next = 0;
  const result = await new Promise<autocannon.Result>((resolveRun, reject) => {
    const instance = autocannon(
      {
        url,
        connections: Math.min(1000, size.rate * 2),
        overallRate: size.rate,
        duration: size.seconds,
        headers: { authorization: `Bearer ${state.token}` },
        requests: [
          {
            method: 'GET',
            setupRequest: (request) => ({
              ...request,
              path: `/v1/cases/${state.caseIds[next++ % state.caseIds.length]}`,
            }),
          },
        ],
      },
      (error: Error | null, done) => (error ? reject(error) : resolveRun(done)),
    );
    // Every answer counts, a refusal too: a 503 after five seconds is five seconds someone waited.
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      latencies.push(responseTime);
      statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
    });
  });
  const opened = await services.db
    .selectFrom('cases')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('transfer_id', '=', transfer.transferId)
    .where('status', '!=', 'opening')
    .executeTakeFirstOrThrow();
  // The next run starts on a quiet service: this one's transfer finishes first (not measured).
  await untilStarted(services.db, transfer);
  await waitFor(
    'the transfer during reads to open every case',
    async () => {
      const { n } = await services.db
        .selectFrom('cases')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('transfer_id', '=', transfer.transferId)
        .where('status', '=', 'opening')
        .executeTakeFirstOrThrow();
      return Number(n) === 0 ? true : undefined;
    },
    { everyMs: 500, timeoutMs: 600_000 },
  );
  latencies.sort((x, y) => x - y);
  const count = (which: (status: number) => boolean) =>
    [...statuses].filter(([status]) => which(status)).reduce((sum, [, n]) => sum + n, 0);
  // A 5xx or a timeout is the service overloaded, which the figures show; any other refusal means the bench asked
  // wrongly, and its figures would not be of reads.
  const refused = count((status) => status < 200 || (status >= 300 && status < 500));
  return {
    figures: { p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) },
    extras: {
      answers: latencies.length,
      achievedRate: Math.round((latencies.length / size.seconds) * 10) / 10,
      serverErrors: count((status) => status >= 500),
      timeouts: result.timeouts,
      connectionErrors: result.errors - result.timeouts,
      casesOpenedByTheTransferDuringReads: Number(opened.n),
    },
    failures: refused > 0 ? [`${refused} reads refused: ${JSON.stringify(Object.fromEntries(statuses))}`] : [],
  };
}

export const apiReadBenchmark: Benchmark<ReadState, ReadSize> = {
  name: 'api_read',
  a: 'GET /v1/cases/:id on the API (token, role and agency checks, the audited read), while a transfer runs',
  b: 'GET /v1/cases/:id on a bare Express handler doing one primary-key SELECT, while the same kind of transfer runs',
  figures: [
    { key: 'p50Ms', label: 'p50 latency', unit: 'ms', better: 'lower' },
    { key: 'p99Ms', label: 'p99 latency', unit: 'ms', better: 'lower' },
  ],
  goal: { text: 'p99 ratio ≤ 1.5', ratios: [{ key: 'p99Ms', max: 1.5 }] },
  size: (options) => ({
    rate: options.rate ?? (options.quick ? 50 : 100),
    seconds: options.seconds ?? (options.quick ? 5 : 30),
    transferClients: options.readClients ?? (options.quick ? 100 : 2000),
    readable: options.quick ? 20 : 200,
  }),
  warmupSize: (size) => ({
    ...size,
    seconds: Math.max(2, Math.round(size.seconds / 5)),
    transferClients: Math.max(20, Math.round(size.transferClients / 10)),
  }),

  async prepare(services, size) {
    const queue = `read-${randomUUID().slice(0, 8)}`;
    const worker = await services.startWorker(queue);
    const api = await stopOnFailure([worker], () => services.startApi(queue));
    const bareServer = await stopOnFailure([worker, api], () => services.startBareReadServer());
    return stopOnFailure([worker, api, bareServer], async () => {
      // The cases read: a transfer's, waiting at decision review, in an agency whose staff reads them.
      const readable = await startTransfer(services.db, api, size.readable);
      await untilStarted(services.db, readable);
      const rows = await waitFor(
        'the cases to read',
        async () => {
          const found = await services.db
            .selectFrom('cases')
            .select(['case_id', 'agency_id'])
            .where('transfer_id', '=', readable.transferId)
            .where('status', '=', 'open')
            .execute();
          return found.length === size.readable ? found : undefined;
        },
        { everyMs: 500, timeoutMs: 300_000 },
      );
      const token = await tokenFor(services.db, { id: 'bench-reader', role: 'staff', agencyId: rows[0]!.agency_id });
      return { services, worker, api, bareServer, caseIds: rows.map((r) => r.case_id), token };
    });
  },

  runA: (state, size) => readWhileTransferring(state, size, state.api.url),
  runB: (state, size) => readWhileTransferring(state, size, state.bareServer.url),

  async finish(state) {
    await Promise.all([state.api.stop(), state.worker.stop(), state.bareServer.stop()]);
  },

  // One read at a time with no transfer running: what a single GET /v1/cases/:id costs the database.
  async probe(state) {
    const count = 200;
    for (let i = 0; i < count; i++) {
      const res = await send(state.api.url, 'GET', `/v1/cases/${state.caseIds[i % state.caseIds.length]}`, {
        token: state.token,
      });
      if (res.status !== 200) throw new Error(`probe: GET /v1/cases/:id answered ${res.status}`);
    }
    return { name: 'read', count };
  },
};
