import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { Actor } from '../../domain/case';
import { addDays } from '../../domain/process';
import { TEST_DIR } from './context';
import { type TestStack, eventually } from './stack';

export const STAFF: Actor = { id: 'staff-1', role: 'staff' };
export const COUNSELOR: Actor = { id: 'counselor-1', role: 'counselor' };
export const DIRECTOR: Actor = { id: 'director-1', role: 'clinical_director' };

export function today(offsetDays = 0): string {
  return addDays(new Date().toISOString().slice(0, 10), offsetDays);
}

export function caseBody(overrides: Record<string, unknown> = {}) {
  return {
    caseId: randomUUID(),
    agencyId: 'agency-1',
    clientId: `client-${randomUUID().slice(0, 8)}`,
    clientName: 'Sam Rivera',
    counselorId: COUNSELOR.id,
    kind: 'transfer',
    reason: 'counselor_relocation',
    lastDay: today(45),
    contact: { channels: [{ channel: 'portal', safe: true }], noContactAtHome: false },
    ...overrides,
  };
}

/** Drives one case through the API, failing loudly on any unexpected answer. */
export class CaseDriver {
  constructor(
    readonly stack: TestStack,
    readonly caseId: string,
    readonly agencyId = 'agency-1',
  ) {}

  static async open(stack: TestStack, overrides: Record<string, unknown> = {}): Promise<CaseDriver> {
    const body = caseBody(overrides);
    const agencyId = body.agencyId;
    const res = await stack.request('POST', '/v1/cases', { body, actor: { ...STAFF, agencyId } });
    if (res.status !== 202) throw new Error(`open: ${res.status} ${JSON.stringify(res.body)}`);
    const driver = new CaseDriver(stack, body.caseId, agencyId);
    await driver.until((c) => c.status === 'open');
    return driver;
  }

  async act(path: string, body: unknown, actor: Actor, expected = 200): Promise<any> {
    const res = await this.stack.request('POST', `/v1/cases/${this.caseId}/${path}`, { body, actor });
    if (res.status !== expected)
      throw new Error(`${path}: expected ${expected}, got ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async view(): Promise<any> {
    return (
      await this.stack.request('GET', `/v1/cases/${this.caseId}`, { actor: { ...DIRECTOR, agencyId: this.agencyId } })
    ).body;
  }

  async until(predicate: (view: any) => boolean, timeoutMs = 20_000): Promise<any> {
    let last: any;
    try {
      return await eventually(async () => {
        last = await this.view();
        return predicate(last) ? last : undefined;
      }, timeoutMs);
    } catch {
      throw new Error(
        `case ${this.caseId} never got there; it stands at ${JSON.stringify({ status: last?.status, step: last?.step, waitingFor: last?.waitingFor, blockers: last?.blockers })}`,
      );
    }
  }

  approve(): Promise<any> {
    return this.act('review', { decision: 'approve', rationale: 'relocation; continuity planned' }, DIRECTOR);
  }

  converse(clientChoice = 'accept_proposed'): Promise<any> {
    return this.act('conversation', { heldOn: today(), clientChoice, lastSessionDate: today() }, COUNSELOR);
  }

  handle(): WorkflowHandle {
    return this.stack.client.workflow.getHandle(`case-${this.caseId}`);
  }
}

/** Keeps the history of a finished run, for the replay test (`npm run histories:record` adopts them). */
export async function saveHistory(handle: WorkflowHandle, name: string): Promise<void> {
  const history = await handle.fetchHistory();
  const dir = join(TEST_DIR, 'histories');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), historyToJSON(history));
}
