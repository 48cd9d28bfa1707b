import { join, resolve } from 'node:path';
import { devKeyFile, payloadKeyring } from '../codec';
import { loadConfig } from '../config';
import { startApi } from '../api/main';
import { openDatabase } from '../db/database';
import { migrateDatabase } from '../db/migrate';
import { setUpRoles } from '../db/roles';
import { createLogger } from '../logger';
import { startTracing } from '../telemetry';
import { startWorker } from '../worker/main';
import { DEMO_AGENCY, seedDemo, startDemoTransfer } from './seed-demo';
import {
  type RunningTemporal,
  embeddedLogins,
  findTemporalTool,
  startEmbeddedPostgres,
  startTemporalDevServer,
} from './dev-services';
import { startMailCatcher } from './mail-catcher';

/**
 * `npm start`: everything on one machine. Embedded PostgreSQL and a Temporal dev server
 * unless DATABASE_URL / TEMPORAL_ADDRESS point elsewhere, then migrations, the worker and the API.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, 'start');
  const dataDir = resolve(config.DATA_DIR);
  const stops: (() => Promise<void>)[] = [];
  const say = (line: string) => process.stdout.write(`${line}\n`);

  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('handoff: stopping…');
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        logger.error({ err: error }, 'a service did not stop cleanly');
      }
    }
    say('handoff: stopped');
    process.exit(code);
  };
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));

  try {
    // First, and stopped last: the worker and the API share this process and its traces (service `handoff`).
    const tracing = await startTracing(config, 'handoff');
    if (tracing) stops.push(tracing.shutdown);

    const { ownerUrl, serviceUrl: databaseUrl } = config.DATABASE_URL
      ? { ownerUrl: config.MIGRATION_DATABASE_URL ?? config.DATABASE_URL, serviceUrl: config.DATABASE_URL }
      : await startDatabase(config.EMBEDDED_POSTGRES_PORT, dataDir, stops, say);

    let temporalAddress = config.TEMPORAL_ADDRESS;
    let temporalUi: string | undefined;
    if (!temporalAddress) {
      const temporal = await startTemporal(config.TEMPORAL_DEV_PORT, config.TEMPORAL_UI_PORT, dataDir, say);
      stops.push(temporal.stop);
      temporalAddress = temporal.address;
      temporalUi = temporal.uiUrl;
    }

    const { applied, serviceRole } = await migrateDatabase(ownerUrl, databaseUrl);
    say(`handoff: database schema ${applied.length ? `migrated (${applied.join(', ')})` : 'up to date'}`);
    if (serviceRole)
      say(`handoff: the service connects as ${serviceRole}: it may read and append the audit trail only`);
    let tokens: Record<string, string> | undefined;
    // A newcomer can try every route at once: a demo agency and a token per role (embedded mode only).
    if (!config.DATABASE_URL) {
      const service = openDatabase(databaseUrl);
      try {
        tokens = await seedDemo(service.db, join(dataDir, 'dev-tokens.json'));
      } finally {
        await service.close();
      }
    }

    // Without SMTP_URL, what the service sends is caught here and kept as .eml files a newcomer can open.
    let smtpUrl = config.SMTP_URL;
    const mailDir = join(dataDir, 'mail');
    if (!smtpUrl) {
      const catcher = await startMailCatcher({ port: config.MAIL_CATCHER_PORT, dir: mailDir });
      stops.push(() => catcher.stop());
      smtpUrl = catcher.url;
    }

    const connected = { ...config, DATABASE_URL: databaseUrl, TEMPORAL_ADDRESS: temporalAddress, SMTP_URL: smtpUrl };
    const worker = await startWorker(connected, createLogger(config, 'worker'), tracing);
    stops.push(worker.stop);
    worker.done.catch((error: unknown) => {
      logger.error({ err: error }, 'worker failed');
      void stopAll(1);
    });
    const api = await startApi(connected, createLogger(config, 'api'), tracing);
    stops.push(api.close);
    const demoTransfer = tokens?.staff ? await startDemoTransfer(api.url, tokens.staff) : undefined;

    say('');
    say(`handoff is running`);
    say(`  staff page   ${api.url}/   (sign in with a token below)`);
    say(`  API          ${api.url}/v1`);
    say(`  API docs     ${api.url}/docs`);
    say(`  health       ${api.url}/health`);
    if (config.WORKER_METRICS_ADDRESS) say(`  SDK metrics  http://${config.WORKER_METRICS_ADDRESS}/metrics`);
    if (tracing) say('  traces       to OTEL_EXPORTER_OTLP_ENDPOINT');
    say(`  Temporal     ${temporalAddress}${temporalUi ? `  (web UI ${temporalUi})` : ''}`);
    say(
      `  payloads     sealed with key ${payloadKeyring(config).encryptWith}` +
        (config.PAYLOAD_KEYS ? ' (PAYLOAD_KEYS)' : `, made for this machine and kept in ${devKeyFile(config)}`),
    );
    say(`  mail         ${config.SMTP_URL ? 'to SMTP_URL' : `caught on ${smtpUrl}, kept in ${mailDir}`}`);
    say(
      `  PostgreSQL   ${
        config.DATABASE_URL
          ? 'from DATABASE_URL'
          : `embedded, port ${config.EMBEDDED_POSTGRES_PORT} (logins in ${join(dataDir, 'postgres-logins.json')})`
      }`,
    );
    if (tokens) {
      say(`  demo tokens  (agency ${DEMO_AGENCY}; also in ${join(dataDir, 'dev-tokens.json')})`);
      for (const [role, token] of Object.entries(tokens)) say(`    ${role.padEnd(18)} ${token}`);
      if (demoTransfer) say(`  demo transfer ${demoTransfer}   (sign in as clinical_director to follow it)`);
    }
    say('Ctrl-C stops everything.');
  } catch (error) {
    process.stderr.write(`handoff: could not start: ${error instanceof Error ? error.message : String(error)}\n`);
    await stopAll(1);
  }
}

/**
 * The embedded PostgreSQL, set up as production runs: migrations as the schema's owner, the worker and the API
 * as a role that cannot change the audit trail. Its superuser only makes the two roles.
 */
async function startDatabase(
  port: number,
  dataDir: string,
  stops: (() => Promise<void>)[],
  say: (line: string) => void,
): Promise<{ ownerUrl: string; serviceUrl: string }> {
  say(`handoff: starting embedded PostgreSQL (data in ${join(dataDir, 'postgres')})`);
  const pg = await startEmbeddedPostgres({ dataDir: join(dataDir, 'postgres'), port, database: 'handoff' });
  stops.push(pg.stop);
  return setUpRoles(pg.url, embeddedLogins(join(dataDir, 'postgres-logins.json'), pg.url));
}

async function startTemporal(
  port: number,
  uiPort: number,
  dataDir: string,
  say: (line: string) => void,
): Promise<RunningTemporal> {
  const binary = findTemporalTool('temporal', say);
  const dbFile = join(dataDir, 'temporal', 'temporal.db');
  if (binary) {
    say(`handoff: starting Temporal dev server (${binary}, history in ${dbFile})`);
    return startTemporalDevServer({ binary, port, uiPort, dbFile, logFile: join(dataDir, 'temporal', 'server.log') });
  }
  // No CLI on PATH and pip could not install one: let the SDK download it (needs internet).
  say('handoff: no temporal CLI available; asking the Temporal SDK to download the dev server');
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      ip: '127.0.0.1',
      port,
      uiPort,
      ui: true,
      dbFilename: dbFile,
      executable: { type: 'cached-download', downloadDir: join(dataDir, 'temporal') },
    },
  });
  return { address: env.address, uiUrl: `http://127.0.0.1:${uiPort}`, stop: () => env.teardown() };
}

void main();
