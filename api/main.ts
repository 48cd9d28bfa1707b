import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { type Config, auditAnchorFile, loadConfig, requireConnections } from '../config';
import { openDatabase } from '../db/database';
import { encryptingDataConverter, payloadKeyring } from '../codec';
import { createLogger } from '../logger';
import { openTemporalClient } from '../temporal';
import { createApp } from './app';

export interface RunningApi {
  url: string;
  close: () => Promise<void>;
}

/** Opens the API's connections and listens; close() drains requests, then the connections. */
export async function startApi(
  config: Config & { DATABASE_URL: string; TEMPORAL_ADDRESS: string },
  logger: Logger,
): Promise<RunningApi> {
  const dataConverter = encryptingDataConverter(payloadKeyring(config));
  const database = openDatabase(config.DATABASE_URL, {
    poolSize: config.DATABASE_POOL_SIZE,
    onPoolError: (error) => logger.warn({ err: error.message }, 'postgres connection lost'),
  });
  const temporal = openTemporalClient(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE, {
    dataConverter,
    failFast: true,
  });
  const app = createApp({
    db: database.db,
    temporal: temporal.client,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    logger,
    health: {
      postgres: database.ping,
      temporal: temporal.ping,
      worker: () => temporal.workerPolling(config.TEMPORAL_TASK_QUEUE),
    },
    rateLimitPerMinute: config.RATE_LIMIT_PER_MINUTE,
    ...(config.METRICS_TOKEN ? { metricsToken: config.METRICS_TOKEN } : {}),
    anchorFile: auditAnchorFile(config),
    payloadCodec: dataConverter.payloadCodecs[0],
    codecCorsOrigins: config.CODEC_CORS_ORIGINS,
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, (error?: Error) => (error ? reject(error) : resolve(s)));
  });
  const { port } = server.address() as AddressInfo;
  const host = config.HOST === '0.0.0.0' ? 'localhost' : config.HOST;
  return {
    url: `http://${host}:${port}`,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([database.close(), temporal.close()]);
    },
  };
}

async function main(): Promise<void> {
  const config = requireConnections(loadConfig());
  const logger = createLogger(config, 'api');
  const api = await startApi(config, logger);
  logger.info({ url: api.url }, 'api listening');
  const stop = (signal: string) => {
    logger.info({ signal }, 'api stopping');
    api.close().then(
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
