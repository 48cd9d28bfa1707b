import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { inLanes } from '../lanes';
import { TransferIdKey } from '../../workflows/search-attributes';

/** The scratch table every baseline activity writes one row to (made by the bench as the schema's owner). */
export const SCRATCH_TABLE = 'bench_rows';

/** The bare workflow id of one case of one baseline run. */
export function bareCaseId(tag: string, index: number): string {
  return `bare-${tag}-${index}`;
}

export function createBaselineActivities({
  pool,
  client,
  taskQueue,
}: {
  pool: Pool;
  client: Client;
  taskQueue: string;
}) {
  return {
    /** One INSERT of one row: the whole of a baseline activity. */
    async insertRow(input: { tag: string; index: number; step: number }): Promise<void> {
      await pool.query(`insert into ${SCRATCH_TABLE} (tag, n, step) values ($1, $2, $3)`, [
        input.tag,
        input.index,
        input.step,
      ]);
    },

    /**
     * Starts one page of bare cases, 16 at a time as openTransferPage does, heartbeating after each. The transfer
     * id rides on the start, so the bench counts bare cases with the same query as the service's.
     */
    async startBarePage(input: { tag: string; from: number; count: number; activities: number }): Promise<void> {
      let started = 0;
      await inLanes(input.count, 16, async (offset) => {
        const index = input.from + offset;
        await client.workflow.start('bareCaseWorkflow', {
          workflowId: bareCaseId(input.tag, index),
          taskQueue,
          args: [{ tag: input.tag, index, activities: input.activities, wait: true }],
          typedSearchAttributes: [{ key: TransferIdKey, value: input.tag }],
        });
        Context.current().heartbeat(++started);
      });
    },
  };
}

export type BaselineActivities = ReturnType<typeof createBaselineActivities>;
