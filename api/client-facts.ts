import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Kysely } from 'kysely';
import { openCasesOfClients } from '../db/clients';
import type { Database } from '../db/schema';
import { caseWorkflowId } from '../domain/case';
import { clientRecordChangedSignal } from '../workflows/case';

/**
 * A change to a client record reaches every open case of that client: each is signalled to re-read its facts
 * from the record (the signal carries none). Sent in the request that changed the record; a case whose
 * workflow has ended is skipped. Returns the cases told.
 */
export async function tellOpenCases(
  db: Kysely<Database>,
  temporal: Client,
  agencyId: string,
  clientIds: string[],
  options: { requestId: string | null; exceptCaseId?: string },
): Promise<string[]> {
  const open = await openCasesOfClients(db, agencyId, clientIds);
  const told: string[] = [];
  for (const { case_id } of open) {
    if (case_id === options.exceptCaseId) continue;
    try {
      await temporal.workflow
        .getHandle(caseWorkflowId(case_id))
        .signal(clientRecordChangedSignal, { requestId: options.requestId });
      told.push(case_id);
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    }
  }
  return told;
}
