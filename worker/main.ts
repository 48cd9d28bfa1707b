import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Client,
  Connection,
  ScheduleAlreadyRunning,
  type ScheduleHandle,
  ScheduleOverlapPolicy,
} from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { createTransport } from 'nodemailer';
import type { Logger } from 'pino';
import { createActivities } from '../activities';
import { encryptingDataConverter, payloadKeyring } from '../codec';
import { type Config, auditAnchorFile, loadConfig, publicUrl, requireConnections } from '../config';
import { writeAnchor } from '../db/anchors';
import { integrateAuditChains } from '../db/audit';
import type { Db } from '../db/database';
import { openServiceDatabase } from '../db/roles';
import { beatWorkerHealth } from '../health';
import { createLogger } from '../logger';
import { type Tracing, startTracing } from '../telemetry';
import { type TemporalTarget, openTemporalClient, temporalTarget } from '../temporal';
import type { ReconcileOptions } from '../domain/reconcile';
import { outboxSenderWorkflow } from '../workflows/outbox-sender';
import { reconcileWorkflow } from '../workflows/reconcile';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

export interface RunningWorker {
  /** Settles when the worker has stopped. */
  done: Promise<void>;
  stop: () => Promise<void>;
}

async function connectWithRetry(target: TemporalTarget, logger: Logger): Promise<NativeConnection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await NativeConnection.connect(target);
    } catch (error) {
      // Temporal may come up after us (compose, a restart): wait for it rather than crash-loop.
      const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
      logger.warn({ attempt, retryInMs: delay, err: (error as Error).message }, 'temporal not reachable yet');
      await sleep(delay);
    }
  }
}

/**
 * Registers the case search attributes if the server lacks them (a workflow that upserts an unknown
 * attribute fails its task). Where the server does not allow it (a cloud namespace), says so and goes on.
 */
export async function ensureSearchAttributes(target: TemporalTarget, namespace: string, logger: Logger): Promise<void> {
  const connection = await Connection.connect(target);
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = SEARCH_ATTRIBUTES.filter((key) => !(key.name in (customAttributes ?? {})));
    if (missing.length === 0) return;
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        missing.map((key) => [key.name, encodeSearchAttributeIndexedValueType(key.type)!]),
      ),
    });
    logger.info({ added: missing.map((key) => key.name) }, 'registered search attributes');
  } catch (error) {
    logger.warn(
      { err: (error as Error).message },
      'could not register search attributes; register them with the temporal CLI',
    );
  } finally {
    await connection.close();
  }
}

/**
 * The reconcile's schedule, `reconcile-<queue>`: created when missing, else brought to the configured interval and
 * queue. Idempotent, so every worker of a deployment calls it at start; a run still going when the next is due
 * makes that one skip.
 */
export async function ensureReconcileSchedule(
  client: Client,
  options: { taskQueue: string; everyMinutes: number; args?: ReconcileOptions },
): Promise<ScheduleHandle> {
  const scheduleId = `reconcile-${options.taskQueue}`;
  const spec = { intervals: [{ every: `${options.everyMinutes} minutes` }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: reconcileWorkflow,
    workflowId: `${scheduleId}-run`,
    taskQueue: options.taskQueue,
    args: [options.args ?? {}] as [ReconcileOptions],
  };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP };
  try {
    return await client.schedule.create({ scheduleId, spec, action, policies });
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    const handle = client.schedule.getHandle(scheduleId);
    await handle.update((previous) => ({ ...previous, spec, action, policies: { ...previous.policies, ...policies } }));
    return handle;
  }
}

let runtimeInstalled = false;

/**
 * Polls the task queue with the case workflows and their activities until stop(). The first worker of a process
 * sets up the SDK's runtime, with its metrics served on WORKER_METRICS_ADDRESS when that is set.
 */
export async function startWorker(
  config: Config & { DATABASE_URL: string; TEMPORAL_ADDRESS: string },
  logger: Logger,
  tracing?: Tracing,
): Promise<RunningWorker> {
  // First: without its keys in production the worker refuses to start, before it connects to anything.
  const dataConverter = encryptingDataConverter(payloadKeyring(config));
  if (!runtimeInstalled) {
    Runtime.install({
      logger: new DefaultLogger('WARN'),
      telemetryOptions: {
        logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) },
        ...(config.WORKER_METRICS_ADDRESS
          ? { metrics: { prometheus: { bindAddress: config.WORKER_METRICS_ADDRESS } } }
          : {}),
      },
    });
    runtimeInstalled = true;
  }
  const target = temporalTarget(config);
  const database = await openServiceDatabase(config.DATABASE_URL, {
    poolSize: config.DATABASE_POOL_SIZE,
    onPoolError: (error) => logger.warn({ err: error.message }, 'postgres connection lost'),
    production: config.NODE_ENV === 'production',
    warn: (message) => logger.warn(message),
  });
  const connection = await connectWithRetry(target, logger);
  await ensureSearchAttributes(target, config.TEMPORAL_NAMESPACE, logger);
  // The transfer activities start and cancel case workflows through this client.
  const temporal = openTemporalClient(target, config.TEMPORAL_NAMESPACE, {
    dataConverter,
    ...(tracing ? { interceptors: tracing.clientInterceptors } : {}),
  });
  // Short socket timeouts: a hung server fails an attempt (and backs off) well inside the activity's timeout.
  const mailer = config.SMTP_URL
    ? createTransport({
        url: config.SMTP_URL,
        connectionTimeout: 20_000,
        greetingTimeout: 20_000,
        socketTimeout: 60_000,
      })
    : null;
  if (!mailer) logger.warn('SMTP_URL is unset: emails will fail, and each becomes a task for staff');
  const anchorFile = auditAnchorFile(config);
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    dataConverter,
    // A bundle made ahead of time must have been made with the same failure converter (FAILURE_CONVERTER_PATH).
    ...(config.WORKFLOW_BUNDLE
      ? { workflowBundle: { codePath: config.WORKFLOW_BUNDLE } }
      : { workflowsPath: require.resolve('../workflows') }),
    // On SIGTERM the activities in flight get this long to finish (each is seconds); what is left is retried.
    shutdownGraceTime: '10 seconds',
    // The SDK sizes the cache from the heap (2,300 workflows on a 4 GB heap, about a third of a MB each); a bulk
    // transfer would fill it. Bounded, the worker's memory does not grow with the caseload.
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
    activities: createActivities({
      db: database.db,
      temporal: temporal.client,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      delivery: {
        mailer,
        from: config.MAIL_FROM,
        publicUrl: publicUrl(config),
        digestHour: config.DIGEST_HOUR,
        leaseMs: config.OUTBOX_LEASE_SECONDS * 1000,
      },
      auditAnchorFile: anchorFile,
    }),
    ...tracing?.workerOptions,
  });
  // One sender per deployment (task queue): a second worker finds it running and leaves it be.
  await temporal.client.workflow.start(outboxSenderWorkflow, {
    workflowId: `outbox-sender-${config.TEMPORAL_TASK_QUEUE}`,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    args: [{ intervalMs: config.OUTBOX_POLL_SECONDS * 1000 }],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
  });
  // Temporal and PostgreSQL compared on a schedule; drift becomes a task for staff (activities/reconcile.ts).
  try {
    await ensureReconcileSchedule(temporal.client, {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      everyMinutes: config.RECONCILE_INTERVAL_MINUTES,
    });
  } catch (error) {
    logger.warn({ err: (error as Error).message }, 'could not create the reconcile schedule; run `npm run reconcile`');
  }
  const integrating = integrateEverySecond(database.db, logger);
  // The audit chains' heads go out of the database on a timer, so a rewrite of a chain is caught.
  const anchoring = setInterval(() => {
    writeAnchor(database.db, anchorFile).catch((error: unknown) =>
      logger.warn({ err: (error as Error).message }, 'could not write the audit anchor'),
    );
  }, config.AUDIT_ANCHOR_INTERVAL_SECONDS * 1000);
  anchoring.unref();
  const health = config.WORKER_HEALTH_FILE
    ? beatWorkerHealth(
        config.WORKER_HEALTH_FILE,
        async () => worker.getState() === 'RUNNING' && (await database.ping()),
        (error) => logger.warn({ err: error.message }, 'could not write the health file'),
      )
    : null;
  const done = worker.run().finally(async () => {
    clearInterval(anchoring);
    await integrating.stop();
    await health?.stop();
    await connection.close();
    mailer?.close();
    await temporal.close();
    await database.close();
  });
  return {
    done,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}

/**
 * The audit trail's sequencer: chains what was written every second, one pass at a time (every worker runs one;
 * they take turns per chain). Writers never wait for it; a verify or an export chains what is left first.
 */
function integrateEverySecond(db: Db, logger: Logger): { stop: () => Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<void> = Promise.resolve();
  const tick = () => {
    pass = integrateAuditChains(db)
      .then(() => undefined)
      .catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'could not chain audit events'))
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(tick, 1_000);
        timer.unref();
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await pass;
    },
  };
}

async function main(): Promise<void> {
  const config = requireConnections(loadConfig());
  const tracing = await startTracing(config, 'handoff-worker');
  const logger = createLogger(config, 'worker');
  const running = await startWorker(config, logger, tracing);
  logger.info({ taskQueue: config.TEMPORAL_TASK_QUEUE }, 'worker polling');
  try {
    await running.done;
  } finally {
    await tracing?.shutdown();
  }
  logger.info('worker stopped');
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`worker failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
