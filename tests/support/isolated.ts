import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import pino from 'pino';
import { openDatabase } from '../../db/database';
import { migrateToLatest } from '../../db/migrate';
import { createDatabase, dropDatabase } from '../../scripts/dev-services';
import { ensureSearchAttributes } from '../../worker/main';
import { testContext } from './context';
import { eventually } from './stack';

export interface IsolatedServices {
  /** The suite's PostgreSQL server, its maintenance database. */
  serverUrl: string;
  databaseUrl: string;
  namespace: string;
  drop: () => Promise<void>;
}

/** The server a database URL lives on, by its maintenance database. */
export function serverUrlOf(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  return url.toString();
}

/**
 * A freshly migrated database and a Temporal namespace of their own (with the case search attributes), on the
 * suite's servers: for tests that look at everything (a reconcile, a backup), which other files must not touch.
 */
export async function isolatedServices(name: string): Promise<IsolatedServices> {
  const context = testContext();
  const serverUrl = serverUrlOf(context.databaseUrl);
  const databaseName = `handoff_${name}_${process.pid}`;
  const databaseUrl = await createDatabase(serverUrl, databaseName);
  const database = openDatabase(databaseUrl);
  try {
    await migrateToLatest(database.db);
  } finally {
    await database.close();
  }
  const namespace = `${name}-${process.pid}`;
  const connection = await Connection.connect({ address: context.temporalAddress });
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    // A new namespace reaches the frontend's cache within a few seconds.
    await eventually(
      () =>
        connection.workflowService.describeNamespace({ namespace }).then(
          () => true,
          () => false,
        ),
      30_000,
    );
    await ensureSearchAttributes({ address: context.temporalAddress }, namespace, pino({ level: 'silent' }));
    await eventually(
      () =>
        connection.workflowService
          .listWorkflowExecutions({ namespace, query: "CaseStatus = 'open'", pageSize: 1 })
          .then(
            () => true,
            () => false,
          ),
      30_000,
    );
  } finally {
    await connection.close();
  }
  return { serverUrl, databaseUrl, namespace, drop: () => dropDatabase(serverUrl, databaseName) };
}
