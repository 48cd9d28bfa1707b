/** Separation of duties (DOMAIN.md): the counselor on a case cannot approve its decisions. */
import type { Actor } from '../case';
import { RULES, refuse } from './rule';

export function checkNotTheCounselor(counselorId: string, actor: Actor, what: string): void {
  if (actor.id !== counselorId) return;
  refuse(
    RULES.separationOfDuties,
    `${actor.id} is this case's counselor and cannot ${what}; another clinical director must`,
  );
}
