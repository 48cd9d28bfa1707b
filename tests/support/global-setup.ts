import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../config';
import { migrateDatabase } from '../../db/migrate';
import { setUpRoles } from '../../db/roles';
import {
  createDatabase,
  dropDatabase,
  dropRoles,
  findTemporalTool,
  freePort,
  newLogins,
  serverUrlOf,
  startEmbeddedPostgres,
  startTemporalDevServer,
} from '../../scripts/dev-services';
import { bundleWorkflows } from '../../scripts/bundle-workflows';
import { CONTEXT_FILE, TEST_DIR, type TestContext } from './context';

type Stop = () => Promise<void>;
declare global {
  var __handoffTestStops: Stop[] | undefined;
}

/**
 * Starts (or reuses, when DATABASE_URL / TEMPORAL_ADDRESS are set) a real PostgreSQL and a real
 * Temporal dev server, migrates a fresh database as its owner for the service's role, and bundles the workflows
 * once for every test file.
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

  // The tests connect as the service does: a role that may only read and append the audit trail. On a shared
  // server (DATABASE_URL) this run's roles have names of their own, and go when it ends.
  const databaseName = `handoff_test_${process.pid}`;
  let serverUrl: string;
  let superuserDatabaseUrl: string;
  const logins = newLogins(config.DATABASE_URL ? `_${process.pid}` : '');
  if (config.DATABASE_URL) {
    serverUrl = config.DATABASE_URL;
    stops.push(() => dropRoles(serverUrl, logins));
    superuserDatabaseUrl = await createDatabase(serverUrl, databaseName);
    stops.push(() => dropDatabase(serverUrl, databaseName));
  } else {
    const pg = await startEmbeddedPostgres({
      dataDir: join(TEST_DIR, 'postgres'),
      port: await freePort(),
      database: databaseName,
    });
    stops.push(pg.stop);
    superuserDatabaseUrl = pg.url;
    serverUrl = serverUrlOf(pg.url);
  }
  const { ownerUrl, serviceUrl: databaseUrl } = await setUpRoles(superuserDatabaseUrl, logins);
  await migrateDatabase(ownerUrl, databaseUrl);

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

  // The image's bundle script: every test's worker starts from what it makes.
  const { path: workflowBundlePath } = await bundleWorkflows(join(TEST_DIR, 'workflow-bundle.js'), {
    trace() {},
    debug() {},
    info() {},
    warn() {},
    error: (m) => process.stderr.write(`${m}\n`),
    log() {},
  });

  const context: TestContext = {
    databaseUrl,
    ownerUrl,
    superuserUrl: serverUrl,
    temporalAddress,
    workflowBundlePath,
    testServerPath,
  };
  writeFileSync(CONTEXT_FILE, JSON.stringify(context, null, 2));
}
