import { condition, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { CaseStepKey } from '../../workflows/search-attributes';
import type { BaselineActivities } from './activities';

// The same timeouts and retries as the case's and the transfer's activities.
const retry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' };
const { insertRow } = proxyActivities<BaselineActivities>({ startToCloseTimeout: '15 seconds', retry });
const { startBarePage } = proxyActivities<BaselineActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '10 seconds',
  retry,
});

export interface BareCaseInput {
  tag: string;
  index: number;
  activities: number;
  /** Wait, as a case waits at decision review (marked the way a case marks it), instead of returning. */
  wait: boolean;
}

/** A bare case: `activities` one-row inserts, one after another, and nothing else. */
export async function bareCaseWorkflow(input: BareCaseInput): Promise<void> {
  for (let step = 1; step <= input.activities; step++) {
    await insertRow({ tag: input.tag, index: input.index, step });
  }
  if (!input.wait) return;
  upsertSearchAttributes([{ key: CaseStepKey, value: 'decision_review' }]);
  await condition(() => false);
}

export interface BareTransferInput {
  tag: string;
  count: number;
  pageSize: number;
  activities: number;
}

/** A bare transfer: starts `count` bare cases a page at a time, one activity a page, as the caseload transfer does. */
export async function bareTransferWorkflow(input: BareTransferInput): Promise<void> {
  for (let from = 0; from < input.count; from += input.pageSize) {
    await startBarePage({
      tag: input.tag,
      from,
      count: Math.min(input.pageSize, input.count - from),
      activities: input.activities,
    });
  }
}
