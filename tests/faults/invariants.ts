import { sql } from 'kysely';
import { Client, Connection } from '@temporalio/client';
import { reconcile } from '../../activities/reconcile';
import { testDataConverter } from '../support/payload-keys';
import type { FaultStack } from './harness';

/** What a fault scenario reports: the figures the README shows, and what must be zero. */
export interface ScenarioReport {
  scenario: string;
  casesExpected: number;
  caseRows: number;
  workflows: number;
  opened: number;
  lost: number;
  duplicated: number;
  duplicateEvents: number;
  chainVerified: boolean;
  /** What `npm run reconcile` finds drifting across the whole deployment (kinds of drift, by name). */
  drift: string[];
  crashes: number;
  faults: number;
  recoverSeconds: number | null;
}

/** Counts what a transfer left: rows, workflows, `case.opened` events, and what was lost or done twice. */
export async function transferInvariants(
  stack: FaultStack,
  transferId: string,
  expected: number,
): Promise<Omit<ScenarioReport, 'scenario' | 'faults' | 'recoverSeconds' | 'crashes'>> {
  const db = stack.db;
  const rows = await db
    .selectFrom('cases')
    .select(['case_id', 'client_id', 'status'])
    .where('transfer_id', '=', transferId)
    .execute();
  const perClient = new Map<string, number>();
  for (const r of rows) perClient.set(r.client_id, (perClient.get(r.client_id) ?? 0) + 1);
  const duplicated = [...perClient.values()].filter((n) => n > 1).length;
  const { rows: openedRows } = await sql<{ n: string }>`
    select count(*) as n from audit_events a join cases c on c.case_id = a.case_id
    where c.transfer_id = ${transferId} and a.action = 'case.opened'`.execute(db);
  const connection = await Connection.connect({ address: stack.temporalAddress });
  let workflows = 0;
  let drift: string[] = [];
  let duplicateEvents = 0;
  let chainVerified = false;
  try {
    const client = new Client({ connection, dataConverter: testDataConverter() });
    // Nothing is left to settle: the scenario is over, so every row and workflow is compared.
    const report = await reconcile({ db, temporal: client }, { settleMs: 0 });
    drift = report.drifts.map((d) => `${d.check} ${d.subject}: ${d.detail}`);
    // The reconcile verifies the chain and looks for events recorded twice: its findings, not a second pass.
    duplicateEvents = report.drifts.filter((d) => d.check === 'audit_event_duplicated').length;
    chainVerified = !report.drifts.some((d) => d.check === 'audit_chain_broken');
    const ids = new Set(rows.map((r) => `case-${r.case_id}`));
    for await (const wf of client.workflow.list({ query: `WorkflowType = 'caseWorkflow'` })) {
      if (ids.has(wf.workflowId) && wf.status.name !== 'CONTINUED_AS_NEW') workflows++;
    }
  } finally {
    await connection.close();
  }
  return {
    casesExpected: expected,
    caseRows: rows.filter((r) => r.status !== 'opening').length,
    workflows,
    opened: Number(openedRows[0]!.n),
    lost: expected - perClient.size,
    duplicated,
    duplicateEvents,
    chainVerified,
    drift,
  };
}
