import { sql } from 'kysely';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { testContext } from './support/context';
import { STAFF, today } from './support/cases';
import { openedCases, seedCaseload } from './support/caseload';
import { type TestStack, eventually, inAgency, startStack } from './support/stack';

let stack: TestStack;
/** The test's own connection, so that watching never waits behind the worker's 2,000 cases for the stack's pool. */
let watcher: DatabaseHandle;
beforeAll(async () => {
  stack = await startStack();
  watcher = openDatabase(testContext().databaseUrl, { poolSize: 1 });
});
afterAll(async () => {
  await watcher.close();
  await stack.close();
});

test('when a 2,000-client transfer loses its worker midway, then a new worker finishes it and every case is opened exactly once', async () => {
  const seed = await seedCaseload(stack.db, {
    clients: 2000,
    receivers: [{ capacity: 800 }, { capacity: 800 }, { capacity: 800 }],
  });
  const start = await stack.request('POST', '/v1/transfers', {
    body: { counselorId: seed.counselorId, lastDay: today(60) },
    actor: inAgency(STAFF, seed),
  });
  expect(start.status).toBe(202);
  const transferId: string = start.body.transferId;
  const count = () => openedCases(watcher.db, transferId);

  await eventually(async () => (await count()) >= 300, 120_000);
  const before = await count();
  await stack.restartWorker();
  await eventually(async () => (await count()) === 2000, 300_000);
  expect(before).toBeLessThan(2000);

  const duplicates = await sql<{ client_id: string }>`
    select client_id from cases where transfer_id = ${transferId} group by client_id having count(*) > 1`.execute(
    stack.db,
  );
  expect(duplicates.rows).toEqual([]);
  const opened = await sql<{ n: string }>`
    select count(*) as n from audit_events a join cases c on c.case_id = a.case_id
    where c.transfer_id = ${transferId} and a.action = 'case.opened'`.execute(stack.db);
  expect(Number(opened.rows[0]!.n)).toBe(2000);
  const proposals = await sql<{
    n: string;
  }>`select count(*) as n from proposals where transfer_id = ${transferId}`.execute(stack.db);
  expect(Number(proposals.rows[0]!.n)).toBe(2000);
  const progress = await eventually(async () => {
    const res = await stack.request('GET', `/v1/transfers/${transferId}`, { actor: inAgency(STAFF, seed) });
    return res.body.status === 'open' ? res.body : undefined;
  });
  expect(progress).toMatchObject({ expected: 2000, started: 2000, cases: 2000 });
}, 600_000);
