import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Role } from '../domain/case';
import { CaseDriver, caseBody, putClient } from './support/cases';
import { TEST_DIR } from './support/context';
import { type TestActor, type TestStack, send, startStack, tokenFor } from './support/stack';

/*
 * The contract: Schemathesis (from PyPI, installed into .tools/ by scripts/install-tools.sh) reads /openapi.json
 * from the live stack (API, worker, PostgreSQL, Temporal) and runs every check it has against every operation,
 * once per role, with schemathesis.toml saying where a check cannot know enough and why.
 *
 * In `npm test` a reduced run: the examples, fuzzing and stateful phases with CONTRACT_EXAMPLES (default 2) cases
 * per operation. The full run, every phase (coverage too: boundaries, unsupported methods, missing headers):
 *   CONTRACT_EXAMPLES=100 npx jest tests/contract.test.ts
 * CONTRACT_SEED fixes the seed (default 1; `random` for a new one each run).
 */

const ROOT = resolve(__dirname, '..');
const ST = join(ROOT, '.tools', 'schemathesis', 'bin', 'st');
const ROLES: Role[] = ['staff', 'counselor', 'clinical_director', 'compliance', 'admin'];
const AGENCY = 'agency-contract';
const ACTORS: Record<Role, TestActor> = {
  staff: { id: 'contract-staff', role: 'staff', agencyId: AGENCY },
  counselor: { id: 'contract-counselor', role: 'counselor', agencyId: AGENCY },
  clinical_director: { id: 'contract-director', role: 'clinical_director', agencyId: AGENCY },
  compliance: { id: 'contract-compliance', role: 'compliance', agencyId: AGENCY },
  admin: { id: 'contract-admin', role: 'admin', agencyId: AGENCY },
};
const FULL = process.env.CONTRACT_EXAMPLES !== undefined;
const EXAMPLES = Number(process.env.CONTRACT_EXAMPLES ?? 2);
const SEED = process.env.CONTRACT_SEED ?? '1';

jest.setTimeout(FULL ? 4 * 60 * 60_000 : 240_000);

let stack: TestStack;

beforeAll(async () => {
  if (!existsSync(ST)) {
    const install = spawnSync('bash', [join(ROOT, 'scripts', 'install-tools.sh')], { stdio: 'inherit' });
    if (install.status !== 0) throw new Error('Schemathesis is missing and could not be installed: npm run tools');
  }
  // Schemathesis sends thousands of requests a minute per token: the rate limit is not what is under test here.
  stack = await startStack({ rateLimitPerMinute: 1_000_000 });
  // Something for the reads and the stateful phase to find: a counselor's caseload, a receiver, an open case.
  const counselor = ACTORS.counselor;
  await stack.request('PUT', `/v1/clinicians/${counselor.id}`, {
    body: { name: 'Contract Counselor', capacity: 30, specialties: [], active: true, contact: 'c@example.org' },
    actor: ACTORS.staff,
  });
  for (let i = 1; i <= 3; i++) {
    const { record } = caseBody({ agencyId: AGENCY, counselorId: counselor.id });
    await putClient(stack, AGENCY, `contract-client-${i}`, record);
  }
  await CaseDriver.open(stack, { agencyId: AGENCY, counselorId: counselor.id });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

interface Run {
  role: Role;
  code: number | null;
  output: string;
  generated: number;
  operations: number;
}

function schemathesis(role: Role, token: string): Promise<Run> {
  const args = [
    '--config-file',
    join(ROOT, 'schemathesis.toml'),
    'run',
    `${stack.url}/openapi.json`,
    '--checks',
    'all',
    '--max-examples',
    String(EXAMPLES),
    '--phases',
    FULL ? 'examples,coverage,fuzzing,stateful' : 'examples,fuzzing,stateful',
    '--no-color',
    '--workers',
    '1',
    ...(SEED === 'random' ? [] : ['--seed', SEED]),
  ];
  return new Promise((done, fail) => {
    const child = spawn(ST, args, {
      cwd: TEST_DIR,
      env: { ...process.env, HANDOFF_TOKEN: token, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => {
      writeFileSync(join(TEST_DIR, `contract-${role}.txt`), output);
      const generated = Number(/(\d+) generated/.exec(output)?.[1] ?? 0);
      const operations = Number(/Tested: (\d+)/.exec(output)?.[1] ?? 0);
      done({ role, code, output, generated, operations });
    });
  });
}

/** What to show when a run fails: its failures and summary, not the thousands of lines before them. */
function failures(run: Run): string {
  const from = run.output.indexOf('= FAILURES =');
  return `${run.role} (exit ${run.code}):\n${from >= 0 ? run.output.slice(from) : run.output.slice(-4000)}`;
}

describe('the OpenAPI document is the contract', () => {
  test('when an existing path is asked with a method it does not take, then 405 with Allow and a problem', async () => {
    const token = await tokenFor(stack.db, ACTORS.staff);
    const res = await send<Record<string, unknown>>(stack.url, 'DELETE', '/v1/cases', { token });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD, OPTIONS, POST');
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 405, title: 'Method Not Allowed' });
    const unknown = await send(stack.url, 'DELETE', '/v1/nowhere', { token });
    expect(unknown.status).toBe(404);
  });

  test('when Schemathesis runs every check against the live stack as each role, then nothing fails', async () => {
    const tokens = await Promise.all(ROLES.map((role) => tokenFor(stack.db, ACTORS[role])));
    // Two at a time: the machine has two cores, and the API answers them all.
    const runs: Run[] = [];
    for (let i = 0; i < ROLES.length; i += 2) {
      runs.push(...(await Promise.all(ROLES.slice(i, i + 2).map((role, j) => schemathesis(role, tokens[i + j]!)))));
    }
    const summary = runs.map((r) => `${r.role}: ${r.operations} operations, ${r.generated} cases, exit ${r.code}`);
    process.stdout.write(`contract (${FULL ? 'full' : 'reduced'}, ${EXAMPLES} examples):\n  ${summary.join('\n  ')}\n`);
    const failed = runs.filter((r) => r.code !== 0);
    expect(failed.map(failures)).toEqual([]);
    for (const run of runs) {
      expect(run.operations).toBeGreaterThanOrEqual(50);
      expect(run.generated).toBeGreaterThan(0);
    }
  });
});
