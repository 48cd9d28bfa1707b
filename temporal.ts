import { Client, Connection } from '@temporalio/client';

export interface TemporalClientHandle {
  client: Client;
  /** True when the frontend answered within two seconds. */
  ping: () => Promise<boolean>;
  close: () => Promise<void>;
}

/** A lazy client: the API starts (and answers 503) even while Temporal is down. */
export function openTemporalClient(address: string, namespace: string): TemporalClientHandle {
  const connection = Connection.lazy({ address });
  const client = new Client({ connection, namespace });
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
    close: () => connection.close(),
  };
}
