import { continueAsNew, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';

const { deliverOutboxBatch } = proxyActivities<Activities>({
  // A batch sends at most a few dozen messages; the rows' own lease (not this timeout) decides when another
  // sender may take over a message this one was sending.
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

export interface OutboxSenderInput {
  /** Pause between batches when the outbox is drained. */
  intervalMs: number;
}

/** Batches per run before continuing as new, so the sender's own history stays small. */
const BATCHES_PER_RUN = 200;

/** The outbox sender: drains due messages batch by batch, forever, one per deployment (`outbox-sender-<queue>`). */
export async function outboxSenderWorkflow(input: OutboxSenderInput): Promise<void> {
  for (let batch = 0; batch < BATCHES_PER_RUN && !workflowInfo().continueAsNewSuggested; batch++) {
    const { more } = await deliverOutboxBatch();
    if (!more) await sleep(input.intervalMs);
  }
  await continueAsNew<typeof outboxSenderWorkflow>(input);
}
