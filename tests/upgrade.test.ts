import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TEST_DIR, testContext } from './support/context';
import { CaseDriver, COUNSELOR, STAFF, today } from './support/cases';
import { type TestStack, startStack } from './support/stack';

/**
 * A release's workflow code is kept when it ships (`npm run release:freeze`). Cases started on it must finish on
 * the code of today: the worker is replaced mid-case, as a deploy replaces it while cases wait for weeks.
 */
const RELEASES = join(__dirname, 'releases');
const previous = JSON.parse(readFileSync(join(RELEASES, 'previous.json'), 'utf8')) as {
  release: string;
  commit: string;
};

let stack: TestStack;
beforeAll(async () => {
  const bundlePath = join(TEST_DIR, `workflow-bundle-${previous.release}.js`);
  writeFileSync(bundlePath, gunzipSync(readFileSync(join(RELEASES, 'previous.workflow-bundle.js.gz'))));
  stack = await startStack({ workflowBundlePath: bundlePath });
});
afterAll(async () => {
  await stack.close();
});

const receiver = { providerId: 'clin-upgrade', name: 'Dr. Upgrade', external: false, contact: 'clin@agency.example' };

test(`when a case started on the previous release (${previous.release}) is finished by today's worker, then it closes with no workflow task failed`, async () => {
  // On the previous release's code: opened, reviewed, the conversation held, a receiver proposed and sent.
  const c = await CaseDriver.open(stack);
  await c.approve();
  await c.converse('accept_proposed');
  await c.act('referrals', { candidates: [receiver] }, STAFF);
  const sent = await c.until((v) => v.process.referrals[0]?.state === 'sent');
  const referralId: string = sent.process.referrals[0].referralId;
  const { runId } = await c.handle().describe();

  // The deploy: the old worker goes, a worker on today's code takes over the waiting case.
  await stack.restartWorker(testContext().workflowBundlePath);
  await c.act(`referrals/${referralId}/response`, { response: 'accepted' }, STAFF);
  await c.act(`referrals/${referralId}/appointment`, { scheduledFor: `${today(5)}T15:00:00Z` }, STAFF);
  await c.until((v) => v.step === 'follow_up');
  await c.act(`referrals/${referralId}/appointment-outcome`, { outcome: 'kept' }, COUNSELOR);
  const closed = await c.until((v) => v.status === 'closed');
  expect(closed.blockers).toEqual([]);

  // The run the deploy happened in (the follow-up may have continued as new since) and the newest one.
  for (const handle of [stack.client.workflow.getHandle(`case-${c.caseId}`, runId), c.handle()]) {
    const history = await handle.fetchHistory();
    const failed = (history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes);
    expect(failed.map((e) => e.workflowTaskFailedEventAttributes?.failure?.message)).toEqual([]);
  }
});
