/** Client autonomy (DOMAIN.md): the client may decline a referral; the choice is recorded and the process goes on. */
import type { CaseProcessState } from '../process';

export function clientDeclinedServices(state: CaseProcessState): boolean {
  return state.conversation.clientChoice === 'decline_services';
}

/** No referral to make: the client declined, or could not be reached to choose one. */
export function noReferralWanted(state: CaseProcessState): boolean {
  return clientDeclinedServices(state) || state.conversation.precludedBy !== null;
}
