import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { Pool } from 'pg';
import type { BareSettings } from '../services';
import { createBaselineActivities } from './activities';

/**
 * The baselines' worker, a process of its own as the service's worker is: bare workflows and one-insert
 * activities, the SDK's defaults but for the cache (the service worker's size), no payload codec. Its settings come
 * from the bench over IPC.
 */
async function main(settings: BareSettings): Promise<void> {
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
  });
  const pool = new Pool({ connectionString: settings.databaseUrl, max: 10 });
  const connection = await Connection.connect({ address: settings.temporalAddress });
  const native = await NativeConnection.connect({ address: settings.temporalAddress });
  const worker = await Worker.create({
    connection: native,
    taskQueue: settings.taskQueue,
    workflowBundle: { codePath: settings.workflowBundle },
    maxCachedWorkflows: settings.maxCachedWorkflows,
    activities: createBaselineActivities({ pool, client: new Client({ connection }), taskQueue: settings.taskQueue }),
  });
  const done = worker.run();
  process.send?.({ ready: true });
  process.channel?.unref();
  try {
    await done;
  } finally {
    await native.close();
    await connection.close();
    await pool.end();
  }
}

process.once('message', (settings: BareSettings) => {
  main(settings).catch((error: unknown) => {
    process.stderr.write(`bare worker failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
});
