import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';

export interface TemporalClientHandle {
  client: Client;
  /** True when the frontend answered within two seconds. */
  ping: () => Promise<boolean>;
  /** True when a worker polled the task queue for workflow tasks within the last 90 seconds. */
  workerPolling: (taskQueue: string) => Promise<boolean>;
  close: () => Promise<void>;
}

/**
 * A lazy client: the API starts (and answers 503) even while Temporal is down. With `failFast` (the API's), a call
 * to an unreachable server gives up after a few quick retries (about a second) instead of the SDK's ten over
 * about twenty seconds, so a person waiting on a request hears "unavailable" at once. The data converter is not
 * optional: every client of the service seals what it hands Temporal (codec/).
 */
export function openTemporalClient(
  address: string,
  namespace: string,
  options: { dataConverter: DataConverter; failFast?: boolean },
): TemporalClientHandle {
  const connection = Connection.lazy({
    address,
    ...(options.failFast
      ? {
          interceptors: [
            makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 4, maxIntervalMs: () => 500 })),
          ],
        }
      : {}),
  });
  const client = new Client({ connection, namespace, dataConverter: options.dataConverter });
  return {
    client,
    async ping() {
      try {
        await connection.withDeadline(Date.now() + 2_000, () => connection.workflowService.getSystemInfo({}));
        return true;
      } catch {
        return false;
      }
    },
    async workerPolling(taskQueue) {
      try {
        const { pollers } = await connection.withDeadline(Date.now() + 2_000, () =>
          connection.workflowService.describeTaskQueue({
            namespace,
            taskQueue: { name: taskQueue },
            taskQueueType: 1, // workflow tasks: a worker that polls them also runs the activities here
          }),
        );
        // A poll lasts up to a minute: an access older than that and a bit means no worker is polling.
        const cutoff = Date.now() / 1000 - 90;
        return (pollers ?? []).some((p) => Number(p.lastAccessTime?.seconds ?? 0) >= cutoff);
      } catch {
        return false;
      }
    },
    close: () => connection.close(),
  };
}
