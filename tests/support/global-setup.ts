import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../../codec';
import { loadConfig } from '../../config';
import { openDatabase } from '../../db/database';
import { migrateToLatest } from '../../db/migrate';
import {
  createDatabase,
  dropDatabase,
  findTemporalTool,
  freePort,
  startEmbeddedPostgres,
  startTemporalDevServer,
} from '../../scripts/dev-services';
import { CONTEXT_FILE, TEST_DIR, type TestContext } from './context';

type Stop = () => Promise<void>;
declare global {
  var __handoffTestStops: Stop[] | undefined;
}

/**
 * Starts (or reuses, when DATABASE_URL / TEMPORAL_ADDRESS are set) a real PostgreSQL and a real
 * Temporal dev server, migrates a fresh database, and bundles the workflows once for every test file.
 */
export default async function globalSetup(): Promise<void> {
  const config = loadConfig();
  const stops: Stop[] = [];
  globalThis.__handoffTestStops = stops;
  rmSync(TEST_DIR, { recursive: true, force: true });
  mkdirSync(TEST_DIR, { recursive: true });

  const testServerPath = findTemporalTool('temporal-test-server', (line) => process.stderr.write(`${line}\n`));
  const temporalPath = findTemporalTool('temporal', (line) => process.stderr.write(`${line}\n`));
  if (!testServerPath || !temporalPath) {
    throw new Error('the Temporal binaries are missing and could not be installed: run `npm run tools`');
  }

  const databaseName = `handoff_test_${process.pid}`;
  let databaseUrl: string;
  if (config.DATABASE_URL) {
    const serverUrl = config.DATABASE_URL;
    databaseUrl = await createDatabase(serverUrl, databaseName);
    stops.push(() => dropDatabase(serverUrl, databaseName));
  } else {
    const pg = await startEmbeddedPostgres({
      dataDir: join(TEST_DIR, 'postgres'),
      port: await freePort(),
      database: databaseName,
    });
    stops.push(pg.stop);
    databaseUrl = pg.url;
  }
  const database = openDatabase(databaseUrl);
  try {
    await migrateToLatest(database.db);
  } finally {
    await database.close();
  }

  let temporalAddress = config.TEMPORAL_ADDRESS;
  if (!temporalAddress) {
    const temporal = await startTemporalDevServer({
      binary: temporalPath,
      port: await freePort(),
      logFile: join(TEST_DIR, 'temporal.log'),
      fast: true,
    });
    stops.push(temporal.stop);
    temporalAddress = temporal.address;
  }

  const bundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    // As the worker bundles at start: failure messages inside workflows go into payloads the codec seals.
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: (m) => process.stderr.write(`${m}\n`), log() {} },
  });
  const workflowBundlePath = join(TEST_DIR, 'workflow-bundle.js');
  writeFileSync(workflowBundlePath, bundle.code);

  const context: TestContext = { databaseUrl, temporalAddress, workflowBundlePath, testServerPath };
  writeFileSync(CONTEXT_FILE, JSON.stringify(context, null, 2));
}
