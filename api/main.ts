import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { type Config, auditAnchorFile, loadConfig, oidcSettings, requireConnections } from '../config';
import { encryptingDataConverter, payloadKeyring } from '../codec';
import type { Db } from '../db/database';
import { purgeExpiredIdempotencyKeys } from '../db/idempotency-keys';
import { purgeRateLimitWindows } from '../db/rate-limits';
import { openServiceDatabase } from '../db/roles';
import { createLogger } from '../logger';
import { type Tracing, startTracing } from '../telemetry';
import { openTemporalClient, temporalTarget } from '../temporal';
import { createApp } from './app';

/** Deletes idempotency keys past their retention and rate-limit windows that ended minutes ago. */
export async function tidyGuards(
  db: Db,
  idempotencyKeyHours: number,
): Promise<{ idempotencyKeys: number; rateLimitWindows: number }> {
  return {
    idempotencyKeys: await purgeExpiredIdempotencyKeys(db, idempotencyKeyHours),
    rateLimitWindows: await purgeRateLimitWindows(db, 600),
  };
}

export interface RunningApi {
  url: string;
  close: () => Promise<void>;
}

/** Opens the API's connections and listens; close() drains requests, then the connections. */
export async function startApi(
  config: Config & { DATABASE_URL: string; TEMPORAL_ADDRESS: string },
  logger: Logger,
  tracing?: Tracing,
): Promise<RunningApi> {
  // First: without its keys in production the API refuses to start, before it connects to anything.
  const dataConverter = encryptingDataConverter(payloadKeyring(config));
  const target = temporalTarget(config);
  const database = await openServiceDatabase(config.DATABASE_URL, {
    poolSize: config.DATABASE_POOL_SIZE,
    onPoolError: (error) => logger.warn({ err: error.message }, 'postgres connection lost'),
    production: config.NODE_ENV === 'production',
    warn: (message) => logger.warn(message),
  });
  const temporal = openTemporalClient(target, config.TEMPORAL_NAMESPACE, {
    dataConverter,
    failFast: true,
    ...(tracing ? { interceptors: tracing.clientInterceptors } : {}),
  });
  const oidc = oidcSettings(config);
  const app = createApp({
    db: database.db,
    copyOut: database.copyOut,
    temporal: temporal.client,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    logger,
    health: {
      postgres: database.ping,
      temporal: temporal.ping,
      worker: () => temporal.workerPolling(config.TEMPORAL_TASK_QUEUE),
    },
    rateLimitPerMinute: config.RATE_LIMIT_PER_MINUTE,
    rateLimitPerAddressPerMinute: config.RATE_LIMIT_PER_ADDRESS_PER_MINUTE,
    idempotencyKeyHours: config.IDEMPOTENCY_KEY_HOURS,
    ...(config.METRICS_TOKEN ? { metricsToken: config.METRICS_TOKEN } : {}),
    anchorFile: auditAnchorFile(config),
    ...(oidc ? { oidc } : {}),
    devTokens: config.NODE_ENV !== 'production',
    ...(tracing ? { tracer: tracing.tracer } : {}),
    payloadCodec: dataConverter.payloadCodecs[0],
    codecCorsOrigins: config.CODEC_CORS_ORIGINS,
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, (error?: Error) => (error ? reject(error) : resolve(s)));
  });
  const { port } = server.address() as AddressInfo;
  const host = config.HOST === '0.0.0.0' ? 'localhost' : config.HOST;
  // Expired idempotency keys and ended rate-limit windows go, now and every ten minutes; every replica does it.
  const tidy = () =>
    tidyGuards(database.db, config.IDEMPOTENCY_KEY_HOURS).then(
      (purged) => logger.debug(purged, 'purged expired guards'),
      (error: unknown) => logger.warn({ err: (error as Error).message }, 'could not purge expired guards'),
    );
  void tidy();
  const tidying = setInterval(() => void tidy(), 10 * 60_000);
  tidying.unref();
  return {
    url: `http://${host}:${port}`,
    async close() {
      clearInterval(tidying);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([database.close(), temporal.close()]);
    },
  };
}

async function main(): Promise<void> {
  const config = requireConnections(loadConfig());
  const tracing = await startTracing(config, 'handoff-api');
  const logger = createLogger(config, 'api');
  const api = await startApi(config, logger, tracing);
  logger.info({ url: api.url }, 'api listening');
  const stop = (signal: string) => {
    logger.info({ signal }, 'api stopping');
    api
      .close()
      .then(() => tracing?.shutdown())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'api did not stop cleanly');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`api failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
