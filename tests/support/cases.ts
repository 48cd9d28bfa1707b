import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { Actor } from '../../domain/case';
import { addDays } from '../../domain/time';
import { TEST_DIR } from './context';
import { type TestActor, type TestStack, eventually } from './stack';

export const STAFF: Actor = { id: 'staff-1', role: 'staff' };
export const COUNSELOR: Actor = { id: 'counselor-1', role: 'counselor' };
export const DIRECTOR: Actor = { id: 'director-1', role: 'clinical_director' };

export function today(offsetDays = 0): string {
  return addDays(new Date().toISOString().slice(0, 10), offsetDays);
}

/**
 * A case and the client record it starts from, with the same fields the tests used to send together:
 * `record` goes to PUT /v1/clients/{id}, `start` to POST /v1/cases.
 */
export function caseBody(overrides: Record<string, unknown> = {}) {
  const all = {
    agencyId: 'agency-1',
    clientId: `client-${randomUUID().slice(0, 8)}`,
    clientName: 'Sam Rivera',
    counselorId: COUNSELOR.id,
    kind: 'transfer',
    reason: 'counselor_relocation',
    lastDay: today(45),
    riskFlags: [],
    // A letter goes by email (to the address on record) or mail; the portal carries outreach only.
    contact: {
      channels: [
        { channel: 'portal', safe: true },
        { channel: 'email', safe: true },
      ],
      noContactAtHome: false,
      email: 'sam.rivera@client.example',
    },
    hasSubstanceUseRecords: false,
    ...overrides,
  } as Record<string, any>;
  const record = {
    name: all.clientName,
    counselorId: all.counselorId,
    active: true,
    riskFlags: all.riskFlags,
    contact: all.contact,
    hasSubstanceUseRecords: all.hasSubstanceUseRecords,
    needs: [],
  };
  const start: Record<string, unknown> = { clientId: all.clientId, kind: all.kind, reason: all.reason };
  if (all.lastDay !== undefined) start.lastDay = all.lastDay;
  if (all.proposedReceivers !== undefined) start.proposedReceivers = all.proposedReceivers;
  return { agencyId: all.agencyId as string, clientId: all.clientId as string, record, start };
}

/** What the case helpers need of a stack: its API, and its Temporal client for a case's history. */
export type CaseApi = Pick<TestStack, 'request' | 'client'>;

/** Writes the client record as agency staff; the answer must be 200 or 201. */
export async function putClient(
  stack: CaseApi,
  agencyId: string,
  clientId: string,
  record: Record<string, unknown>,
): Promise<void> {
  const res = await stack.request('PUT', `/v1/clients/${clientId}`, { body: record, actor: { ...STAFF, agencyId } });
  if (res.status !== 200 && res.status !== 201) throw new Error(`client: ${res.status} ${JSON.stringify(res.body)}`);
}

/** The case id a 202 start answered with. */
export function caseIdOf(res: { headers: Headers }): string {
  return res.headers.get('location')!.split('/').pop()!;
}

/** A release of information naming one provider, valid for 180 days. */
export const release = (providerId: string, overrides: Record<string, unknown> = {}) => ({
  recipientProviderId: providerId,
  disclosed: 'treatment summary and diagnosis',
  purpose: 'continuity of care',
  expiresOn: today(180),
  coversSubstanceUseRecords: false,
  revocable: true,
  signedOn: today(),
  ...overrides,
});

/** Drives one case through the API, failing loudly on any unexpected answer. */
export class CaseDriver {
  constructor(
    readonly stack: CaseApi,
    readonly caseId: string,
    readonly agencyId = 'agency-1',
    readonly clientId = '',
  ) {}

  static async open(stack: CaseApi, overrides: Record<string, unknown> = {}): Promise<CaseDriver> {
    const { agencyId, clientId, record, start } = caseBody(overrides);
    await putClient(stack, agencyId, clientId, record);
    const res = await stack.request('POST', '/v1/cases', { body: start, actor: { ...STAFF, agencyId } });
    if (res.status !== 202) throw new Error(`open: ${res.status} ${JSON.stringify(res.body)}`);
    const driver = new CaseDriver(stack, caseIdOf(res), agencyId, clientId);
    await driver.until((c) => c.status === 'open');
    return driver;
  }

  async act(path: string, body: unknown, actor: TestActor, expected = 200): Promise<any> {
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
