import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { testContext } from './support/context';
import { testDataConverter } from './support/payload-keys';
import { quietRuntime } from './support/stack';

/**
 * Histories recorded from real runs of every path (`npm run histories:record` adopts new ones).
 * A change to a workflow that would break cases already running fails here, not in production. They replay through
 * the service's codec: those recorded before payloads were encrypted pass through it in clear, as a case still
 * running from then does; those recorded since open with the suite's key.
 */
const HISTORIES = join(__dirname, 'histories');
const files = existsSync(HISTORIES)
  ? readdirSync(HISTORIES)
      .filter((f) => f.endsWith('.json'))
      .sort()
  : [];

test('when the recorded histories are replayed against today’s workflow code, then none has a determinism error', async () => {
  quietRuntime();
  expect(files.length).toBeGreaterThanOrEqual(6);
  const histories = files.map((file) => ({
    workflowId: file.replace(/\.json$/, ''),
    history: JSON.parse(readFileSync(join(HISTORIES, file), 'utf8')) as unknown,
  }));
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories(
    { workflowBundle: { codePath: testContext().workflowBundlePath }, dataConverter: testDataConverter() },
    histories as never,
  )) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
});
