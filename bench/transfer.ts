import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import pino from 'pino';
import { createActivities } from '../activities';
import { createApp } from '../api/app';
import { openDatabase } from '../db/database';
import { migrateToLatest } from '../db/migrate';
import { findTemporalTool, freePort, startEmbeddedPostgres, startTemporalDevServer } from '../scripts/dev-services';
import { seedCaseload } from '../tests/support/caseload';
import { testDataConverter } from '../tests/support/payload-keys';
import { createToken, upsertUser } from '../db/users';
import { openTemporalClient } from '../temporal';

/**
 * `npm run bench`: a caseload transfer of N clients (default 10,000) through the real stack, against a
 * bare baseline measured in the same run: the same number of no-op workflows started by the same SDK
 * with the same concurrency on the same servers. Reports wall time, the ratio, and the worker's peak RSS.
 */
const CLIENTS = Number(process.argv[2] ?? 10_000);
const DIR = resolve(__dirname, '..', '.data', 'bench');

async function main(): Promise<void> {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
  const pg = await startEmbeddedPostgres({ dataDir: join(DIR, 'postgres'), port: await freePort(), database: 'bench' });
  const binary = findTemporalTool('temporal');
  if (!binary) throw new Error('no temporal CLI: run npm run tools');
  const temporalServer = await startTemporalDevServer({
    binary,
    port: await freePort(),
    logFile: join(DIR, 'temporal.log'),
    fast: true,
  });
  const database = openDatabase(pg.url, { poolSize: 20 });
  await migrateToLatest(database.db);
  // The service's stack seals its payloads as production does; the bare baseline below does not.
  const dataConverter = testDataConverter();
  const temporal = openTemporalClient({ address: temporalServer.address }, 'default', { dataConverter });
  const native = await NativeConnection.connect({ address: temporalServer.address });
  const taskQueue = `bench-${randomUUID()}`;
  const worker = await Worker.create({
    connection: native,
    taskQueue,
    dataConverter,
    workflowsPath: require.resolve('../workflows'),
    activities: createActivities({ db: database.db, temporal: temporal.client, taskQueue }),
    maxCachedWorkflows: 2000,
  });
  const running = worker.run();
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 250);

  try {
    // Baseline: bare starts of no-op workflows (a query-less workflow that returns at once), same concurrency.
    const bareConnection = await Connection.connect({ address: temporalServer.address });
    const bare = new Client({ connection: bareConnection });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < CLIENTS) {
          const i = next++;
          await bare.workflow.start('caseWorkflow', {
            workflowId: `bare-${taskQueue}-${i}`,
            taskQueue: `${taskQueue}-nobody`,
            args: [{}],
          });
        }
      }),
    );
    const bareMs = performance.now() - t0;
    await bareConnection.close();

    const seed = await seedCaseload(database.db, {
      clients: CLIENTS,
      receivers: [{ capacity: CLIENTS }, { capacity: CLIENTS }],
    });
    await upsertUser(database.db, { id: 'bench-staff', role: 'staff', agencyId: seed.agencyId, name: 'bench' });
    const { token } = await createToken(database.db, { agencyId: seed.agencyId, userId: 'bench-staff' });
    const headers = { authorization: `Bearer ${token}` };
    const call = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        ...init,
        headers: { ...headers, ...(init.headers ?? {}) },
      });
      const body = (await res.json()) as T;
      if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
      return body;
    };
    const server = createApp({
      db: database.db,
      temporal: temporal.client,
      taskQueue,
      logger: pino({ level: 'silent' }),
      health: { postgres: database.ping, temporal: temporal.ping },
      payloadCodec: dataConverter.payloadCodecs[0],
    }).listen(0);
    const port = (server.address() as { port: number }).port;
    const t1 = performance.now();
    const { transferId } = await call<{ transferId: string }>('/v1/transfers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        counselorId: seed.counselorId,
        lastDay: new Date(Date.now() + 60 * 86_400_000).toISOString().slice(0, 10),
      }),
    });
    let started = 0;
    let written = 0;
    const progressAt: number[] = [];
    for (;;) {
      const q0 = performance.now();
      const p = await call<{ started: number; cases: number }>(`/v1/transfers/${transferId}`);
      progressAt.push(performance.now() - q0);
      started = p.started;
      written = p.cases;
      if (written >= CLIENTS) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const transferMs = performance.now() - t1;
    server.close();
    progressAt.sort((a, b) => a - b);
    const result = {
      clients: CLIENTS,
      bareStartsSeconds: +(bareMs / 1000).toFixed(1),
      transferToAllCasesOpenSeconds: +(transferMs / 1000).toFixed(1),
      ratioToBareStarts: +(transferMs / bareMs).toFixed(2),
      casesStarted: started,
      caseRowsWritten: written,
      progressQueryMedianMs: +progressAt[Math.floor(progressAt.length / 2)]!.toFixed(1),
      progressQueryMaxMs: +progressAt.at(-1)!.toFixed(1),
      processPeakRssMiB: Math.round(peakRss / 2 ** 20),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    clearInterval(sampler);
    worker.shutdown();
    await running;
    await native.close();
    await temporal.close();
    await database.close();
    await temporalServer.stop();
    await pg.stop();
  }
}

void main();
