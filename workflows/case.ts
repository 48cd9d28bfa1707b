import {
  ApplicationFailure,
  condition,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Actor, CaseKind, CaseReason, CaseStatus } from '../domain/case';
import { NON_RETRYABLE_FAILURES } from '../domain/errors';

const { openCase, closeCase } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: NON_RETRYABLE_FAILURES,
  },
});

export interface CaseInput {
  caseId: string;
  agencyId: string;
  clientId: string;
  counselorId: string;
  kind: CaseKind;
  reason: CaseReason;
  openedBy: Actor;
  requestId: string | null;
}

export interface CaseResult {
  caseId: string;
  status: CaseStatus;
}

export interface CaseState {
  caseId: string;
  status: CaseStatus;
  step: string;
}

export interface CancelCaseInput {
  actor: Actor;
  reason: string;
  requestId: string | null;
}

export const caseStateQuery = defineQuery<CaseState>('caseState');
export const cancelCaseUpdate = defineUpdate<CaseState, [CancelCaseInput]>('cancelCase');

/** One client's termination or transfer, from decision review to follow-up. */
export async function caseWorkflow(input: CaseInput): Promise<CaseResult> {
  const state: CaseState = { caseId: input.caseId, status: 'opening', step: 'opening' };
  let cancellation: CancelCaseInput | undefined;

  setHandler(caseStateQuery, () => state);
  setHandler(
    cancelCaseUpdate,
    async (request) => {
      cancellation = request;
      await condition(() => state.status === 'cancelled');
      return state;
    },
    {
      validator: (request) => {
        if (state.status !== 'open' && state.status !== 'opening') {
          throw ApplicationFailure.nonRetryable(`case is already ${state.status}`, 'Conflict');
        }
        if (!request.reason.trim()) {
          throw ApplicationFailure.nonRetryable('a cancellation needs a reason', 'InvalidInput');
        }
      },
    },
  );

  await openCase({
    caseId: input.caseId,
    agencyId: input.agencyId,
    clientId: input.clientId,
    counselorId: input.counselorId,
    kind: input.kind,
    reason: input.reason,
    openedBy: input.openedBy,
    requestId: input.requestId,
  });
  state.status = 'open';
  state.step = 'decision_review';

  await condition(() => cancellation !== undefined);
  const { actor, reason, requestId } = cancellation!;
  await closeCase({ caseId: input.caseId, clientId: input.clientId, status: 'cancelled', actor, reason, requestId });
  state.status = 'cancelled';
  state.step = 'done';
  return { caseId: input.caseId, status: state.status };
}
