/**
 * Deadlines (DOMAIN.md): in a relocation, each client is told at least `noticeDays` before the counselor's
 * last day, in the agency's dates; cases that will miss it escalate before and at the deadline.
 */
import type { CaseProcessState, Policy } from '../process';
import { addDays } from '../time';
import { type Blocker, RULES } from './rule';

/** The date by which the client must be told (the agency's date), if the case has a last day. */
export function noticeDueDate(lastDay: string | null, policy: Pick<Policy, 'noticeDays'>): string | null {
  return lastDay ? addDays(lastDay, -policy.noticeDays) : null;
}

/** The date the warning escalation fires. */
export function noticeWarningDate(due: string, policy: Pick<Policy, 'noticeWarningDays'>): string {
  return addDays(due, -policy.noticeWarningDays);
}

export function clientTold(state: CaseProcessState): boolean {
  return state.conversation.heldOn !== null || state.conversation.precludedBy !== null;
}

/** The notice the case still owes the client: waiting for it, and a blocker once it is at risk or missed. */
export function noticeBlocker(state: CaseProcessState, today: string): Blocker | null {
  const due = noticeDueDate(state.facts.lastDay, state.policy);
  if (!due || clientTold(state)) return null;
  const lead = `${state.policy.noticeDays} days before the counselor's last day (${state.facts.lastDay})`;
  if (today > due) return { rule: RULES.deadlines, detail: `the client was not told by ${due}, ${lead}`, due };
  if (today >= noticeWarningDate(due, state.policy)) {
    return { rule: RULES.deadlines, detail: `the client must be told by ${due}, ${lead}; not yet told`, due };
  }
  return null;
}

export function noticeWait(state: CaseProcessState): string | null {
  const due = noticeDueDate(state.facts.lastDay, state.policy);
  if (!due || clientTold(state)) return null;
  return `${RULES.deadlines}: the client to be told by ${due}`;
}
