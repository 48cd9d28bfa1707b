import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** What the global setup started, handed to every test file through a file (not the environment). */
export interface TestContext {
  /** The suite's database as the service's role: what the worker and the API connect as. */
  databaseUrl: string;
  /** The same database as the schema's owner, who migrates it. */
  ownerUrl: string;
  /** The server's maintenance database as a superuser: for creating databases, and for breaking things on purpose. */
  superuserUrl: string;
  temporalAddress: string;
  workflowBundlePath: string;
  testServerPath: string;
}

export const TEST_DIR = resolve(__dirname, '..', '..', '.data', 'test');
export const CONTEXT_FILE = join(TEST_DIR, 'context.json');

export function testContext(): TestContext {
  return JSON.parse(readFileSync(CONTEXT_FILE, 'utf8')) as TestContext;
}
