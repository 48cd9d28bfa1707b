import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { cancelCaseUpdate, caseStateQuery, caseWorkflow } from '../workflows';
import { testContext } from './support/context';
import { STAFF, quietRuntime } from './support/stack';

let env: TestWorkflowEnvironment;
let database: DatabaseHandle;
beforeAll(async () => {
  quietRuntime();
  const context = testContext();
  database = openDatabase(context.databaseUrl);
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: context.testServerPath } },
  });
});
afterAll(async () => {
  await env?.teardown();
  await database?.close();
});

test('when a month passes with no review, then the case is still waiting on its decision review, durably', async () => {
  const taskQueue = `ts-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { codePath: testContext().workflowBundlePath },
    activities: createActivities({ db: database.db }),
  });
  const caseId = randomUUID();
  await worker.runUntil(async () => {
    const handle = await env.client.workflow.start(caseWorkflow, {
      workflowId: `case-${caseId}`,
      taskQueue,
      args: [
        {
          caseId,
          agencyId: 'agency-1',
          clientId: 'client-ts',
          counselorId: 'counselor-1',
          kind: 'termination',
          reason: 'goals_met',
          openedBy: STAFF,
          requestId: null,
        },
      ],
    });
    const before = await env.currentTimeMs();
    await env.sleep('30 days');
    expect((await env.currentTimeMs()) - before).toBeGreaterThanOrEqual(30 * 24 * 3600 * 1000);
    expect(await handle.query(caseStateQuery)).toEqual({ caseId, status: 'open', step: 'decision_review' });
    await handle.executeUpdate(cancelCaseUpdate, {
      args: [{ actor: STAFF, reason: 'client chose to continue', requestId: null }],
    });
    expect(await handle.result()).toEqual({ caseId, status: 'cancelled' });
  });
  const row = await database.db
    .selectFrom('cases')
    .select(['status'])
    .where('case_id', '=', caseId)
    .executeTakeFirstOrThrow();
  expect(row.status).toBe('cancelled');
});
