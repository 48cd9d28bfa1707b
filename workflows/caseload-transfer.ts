import {
  ApplicationFailure,
  ContinueAsNew,
  isCancellation,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Actor } from '../domain/case';
import { NON_RETRYABLE_FAILURES } from '../domain/errors';
import { addDays } from '../domain/time';

const { openTransferPage, cancelTransferPage, setTransferStatus } = proxyActivities<Activities>({
  // A page starts up to a few hundred workflows; heartbeats show it is alive.
  startToCloseTimeout: '10 minutes',
  // A page heartbeats after every case it starts: a killed worker's page is taken up again within seconds.
  heartbeatTimeout: '10 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: NON_RETRYABLE_FAILURES,
  },
});

export interface TransferInput {
  transferId: string;
  lastDay: string;
  pageSize?: number;
  /** Carried across continue-as-new. */
  cursor?: string | null;
  opened?: number;
  phase?: TransferPhase;
  cancel?: CancelTransferInput | null;
  /** Where cancelling had got to: a case id, never the opening cursor's client id. */
  cancelCursor?: string | null;
}

export type TransferPhase = 'opening' | 'open' | 'cancelling' | 'cancelled' | 'finished';

export interface TransferState {
  transferId: string;
  phase: TransferPhase;
  opened: number;
  cursor: string | null;
}

export interface CancelTransferInput {
  actor: Actor;
  reason: string;
  requestId: string | null;
}

export const transferStateQuery = defineQuery<TransferState>('transferState');
export const cancelTransferUpdate = defineUpdate<TransferState, [CancelTransferInput]>('cancelTransfer');

// Pages per run before continue-as-new: the transfer's own history stays small at any caseload size (about six
// events a page). A new run's first task waits in the task queue behind the tasks of every case started before it,
// minutes under a large caseload, so a run holds 100 pages: 20,000 clients open without one. Raised from 25 with no
// patch: a run still open has not reached its continue-as-new, and a later one decides nothing differently before.
const PAGES_PER_RUN = 100;

/** A relocating counselor's whole caseload: opens one case per client, in pages, and can cancel them all. */
export async function caseloadTransferWorkflow(input: TransferInput): Promise<TransferState> {
  try {
    return await runTransfer(input);
  } catch (error) {
    if (error instanceof ContinueAsNew || isCancellation(error)) throw error;
    // A transfer that cannot go on says so, and no longer blocks a new one for the counselor.
    await setTransferStatus({
      transferId: input.transferId,
      status: 'failed',
      actor: null,
      reason: String((error as Error).message),
    });
    throw error;
  }
}

async function runTransfer(input: TransferInput): Promise<TransferState> {
  const pageSize = input.pageSize ?? 200;
  const state: TransferState = {
    transferId: input.transferId,
    phase: input.phase ?? 'opening',
    opened: input.opened ?? 0,
    cursor: input.cursor ?? null,
  };
  let cancel = input.cancel ?? null;

  setHandler(transferStateQuery, () => state);
  setHandler(
    cancelTransferUpdate,
    (request) => {
      cancel = request;
      state.phase = 'cancelling';
      return Promise.resolve(state);
    },
    {
      validator: (request) => {
        if (cancel || state.phase === 'cancelled' || state.phase === 'finished') {
          throw ApplicationFailure.create({
            type: 'Conflict',
            message: `the transfer is already ${cancel ? 'cancelling' : state.phase}`,
            nonRetryable: true,
          });
        }
        if (!['staff', 'clinical_director', 'admin'].includes(request.actor.role)) {
          throw ApplicationFailure.create({
            type: 'RuleViolation',
            message: 'cancelling a transfer is for staff and directors',
            nonRetryable: true,
            details: [{ rule: 'role' }],
          });
        }
        if (!request.reason.trim())
          throw ApplicationFailure.create({
            type: 'InvalidInput',
            message: 'a cancellation needs a reason',
            nonRetryable: true,
          });
      },
    },
  );

  const carryOn = async (): Promise<never> => {
    await condition(allHandlersFinished);
    return continueAsNew<typeof caseloadTransferWorkflow>({
      ...input,
      pageSize,
      cursor: state.cursor,
      opened: state.opened,
      phase: state.phase,
      cancel,
      cancelCursor,
    });
  };
  let cancelCursor: string | null = input.cancelCursor ?? null;

  let pages = 0;
  while (state.phase === 'opening' && !cancel) {
    const page = await openTransferPage({ transferId: input.transferId, afterClientId: state.cursor, pageSize });
    state.opened = page.openedTotal;
    state.cursor = page.nextClientId;
    if (!page.nextClientId) {
      state.phase = 'open';
      await setTransferStatus({ transferId: input.transferId, status: 'open', actor: null, reason: null });
    }
    if (++pages >= PAGES_PER_RUN || workflowInfo().continueAsNewSuggested) await carryOn();
  }

  if (!cancel) {
    // Open: the cases run on their own; the transfer waits for a cancellation until well after the last day.
    const until = Date.parse(`${addDays(input.lastDay, 90)}T00:00:00.000Z`) - Date.now();
    await condition(() => cancel !== null, Math.max(1, until));
  }
  if (!cancel) {
    state.phase = 'finished';
    await setTransferStatus({ transferId: input.transferId, status: 'finished', actor: null, reason: null });
    return state;
  }

  state.phase = 'cancelling';
  pages = 0;
  for (;;) {
    const page = await cancelTransferPage({
      transferId: input.transferId,
      afterCaseId: cancelCursor,
      pageSize,
      actor: cancel.actor,
      reason: cancel.reason,
    });
    cancelCursor = page.nextCaseId;
    if (!cancelCursor) break;
    if (++pages >= PAGES_PER_RUN || workflowInfo().continueAsNewSuggested) await carryOn();
  }
  state.phase = 'cancelled';
  await setTransferStatus({
    transferId: input.transferId,
    status: 'cancelled',
    actor: cancel.actor,
    reason: cancel.reason,
  });
  await condition(allHandlersFinished);
  return state;
}
