import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { reconcile } from '../activities/reconcile';
import { lastAnchor, writeAnchor } from '../db/anchors';
import { integrateAuditChains, verifyChain } from '../db/audit';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { migrateDatabase } from '../db/migrate';
import { findPostgresTool } from '../scripts/dev-services';
import { CaseDriver } from './support/cases';
import { TEST_DIR } from './support/context';
import { type FreshDatabase, type IsolatedServices, freshDatabase, isolatedServices } from './support/isolated';
import { type TestStack, startStack } from './support/stack';

/** Kept small for `npm test`; the drill is the same at any size. */
const CASES = 6;
const dir = join(TEST_DIR, `backup-drill-${process.pid}`);
const anchorFile = join(dir, 'audit-anchors.ndjson');
let services: IsolatedServices;
let stack: TestStack;
let restoredDatabase: FreshDatabase | undefined;
let restored: DatabaseHandle | undefined;
let restoredAsOwner: DatabaseHandle | undefined;

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  services = await isolatedServices('backup');
  stack = await startStack({
    databaseUrl: services.databaseUrl,
    namespace: services.namespace,
    auditAnchorFile: anchorFile,
  });
}, 60_000);

afterAll(async () => {
  await restored?.close();
  await restoredAsOwner?.close();
  await stack?.close();
  await restoredDatabase?.drop();
  await services?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function run(tool: 'pg_dump' | 'pg_restore', args: string[]): void {
  const binary = findPostgresTool(tool);
  if (!binary) throw new Error(`no ${tool} 17 (the embedded server's version): run \`npm run tools\``);
  const result = spawnSync(binary, args, { encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0) throw new Error(`${tool} failed (${result.status}): ${result.stderr}`);
}

test('when the running system is dumped with pg_dump and restored into a fresh database, then the chain verifies against its anchor, every open case finds its workflow and the reconcile is clean', async () => {
  const cases = await Promise.all(Array.from({ length: CASES }, () => CaseDriver.open(stack)));
  // Cases at different steps, all still running while the dump is taken.
  await cases[0]!.approve();
  await cases[0]!.until((c) => c.step === 'client_conversation');
  // The anchor a worker writes every few minutes, out of the database; the backup must agree with it.
  await integrateAuditChains(stack.db);
  const anchor = await writeAnchor(stack.db, anchorFile);
  expect(anchor?.chains).toBeDefined();

  // As the README says: dumped by the schema's owner, restored by the owner into a fresh database (privileges are
  // not restored but granted again by migrating), then read by the service's role.
  const dump = join(dir, 'handoff.dump');
  run('pg_dump', ['--format=custom', '--no-owner', '--no-acl', `--file=${dump}`, `--dbname=${services.ownerUrl}`]);
  expect(statSync(dump).size).toBeGreaterThan(0);
  restoredDatabase = await freshDatabase('restored', { migrate: false });
  run('pg_restore', ['--no-owner', '--no-acl', '--exit-on-error', `--dbname=${restoredDatabase.ownerUrl}`, dump]);
  expect((await migrateDatabase(restoredDatabase.ownerUrl, restoredDatabase.databaseUrl)).applied).toEqual([]);
  restored = openDatabase(restoredDatabase.databaseUrl);

  await integrateAuditChains(restored.db);
  const chain = await verifyChain(restored.db, lastAnchor(anchorFile), { full: true });
  expect(chain).toMatchObject({ ok: true, firstBroken: null, unchained: 0, anchor: { matches: true } });
  for (const [name, head] of Object.entries(anchor!.chains!)) {
    const restoredHead = chain.chains.find((c) => c.chain === name)?.headPosition;
    expect(BigInt(restoredHead ?? 0)).toBeGreaterThanOrEqual(BigInt(head.position));
  }

  const open = await restored.db
    .selectFrom('cases')
    .select(['case_id', 'workflow_id'])
    .where('status', '=', 'open')
    .execute();
  expect(open.map((c) => c.case_id).sort()).toEqual(cases.map((c) => c.caseId).sort());
  for (const row of open) {
    const { status } = await stack.client.workflow.getHandle(row.workflow_id).describe();
    expect({ case: row.case_id, status: status.name }).toEqual({ case: row.case_id, status: 'RUNNING' });
  }

  // The restored database against the live Temporal: what an operator runs right after a restore.
  const report = await reconcile(
    { db: restored.db, temporal: stack.client, auditAnchorFile: anchorFile },
    { settleMs: 0 },
  );
  expect(report.drifts).toEqual([]);
  expect(report.checked).toMatchObject({ caseRows: CASES, caseWorkflows: CASES });
  // Even the restored schema still refuses to rewrite the trail: to the service by privilege, to its owner by trigger.
  await expect(restored.db.deleteFrom('audit_events').execute()).rejects.toThrow(/permission denied/);
  restoredAsOwner = openDatabase(restoredDatabase.ownerUrl);
  await expect(restoredAsOwner.db.deleteFrom('audit_events').execute()).rejects.toThrow(/append-only/);
}, 120_000);
