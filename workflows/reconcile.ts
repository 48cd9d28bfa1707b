import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ReconcileOptions, ReconcileSummary } from '../domain/reconcile';

const { reconcileAndRaiseTasks } = proxyActivities<Activities>({
  // Pages through every case and the whole audit chain: long on a big system, so it heartbeats per page.
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '30 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
});

/** The scheduled invariants check (`reconcile-<queue>`): compares Temporal with PostgreSQL, raises staff tasks. */
export async function reconcileWorkflow(options: ReconcileOptions = {}): Promise<ReconcileSummary> {
  return reconcileAndRaiseTasks(options);
}
