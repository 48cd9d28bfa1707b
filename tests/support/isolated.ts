import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import pino from 'pino';
import { migrateDatabase } from '../../db/migrate';
import { prepareDatabase, roleOf } from '../../db/roles';
import { createDatabase, dropDatabase } from '../../scripts/dev-services';
import { ensureSearchAttributes } from '../../worker/main';
import { testContext } from './context';
import { eventually } from './stack';

/** A database of its own on the suite's server, with the suite's two roles. */
export interface FreshDatabase {
  /** As the service's role. */
  databaseUrl: string;
  /** As the schema's owner. */
  ownerUrl: string;
  /** As a superuser: to break things on purpose, as a bad restore or someone with the server's keys could. */
  superuserUrl: string;
  drop: () => Promise<void>;
}

function onDatabase(url: string, database: string): string {
  const target = new URL(url);
  target.pathname = `/${database}`;
  return target.toString();
}

/** A new database, migrated as its owner for the service's role unless `migrate` is false (to restore into). */
export async function freshDatabase(name: string, options: { migrate?: boolean } = {}): Promise<FreshDatabase> {
  const context = testContext();
  const databaseName = `handoff_${name}_${process.pid}`;
  const superuserUrl = await createDatabase(context.superuserUrl, databaseName);
  const ownerUrl = onDatabase(context.ownerUrl, databaseName);
  const databaseUrl = onDatabase(context.databaseUrl, databaseName);
  await prepareDatabase(superuserUrl, { owner: roleOf(ownerUrl), service: roleOf(databaseUrl) });
  if (options.migrate !== false) await migrateDatabase(ownerUrl, databaseUrl);
  return { databaseUrl, ownerUrl, superuserUrl, drop: () => dropDatabase(context.superuserUrl, databaseName) };
}

export interface IsolatedServices extends FreshDatabase {
  namespace: string;
}

/**
 * A freshly migrated database and a Temporal namespace of their own (with the case search attributes), on the
 * suite's servers: for tests that look at everything (a reconcile, a backup), which other files must not touch.
 */
export async function isolatedServices(name: string): Promise<IsolatedServices> {
  const context = testContext();
  const database = await freshDatabase(name);
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
  return { ...database, namespace };
}
