import { RuleRefusal } from '../domain/rules/rule';
import { problem } from './problem';

/** Runs a business check of `domain/`; its refusal becomes a problem naming the rule (400 for bad input, else 422). */
export function refusing(check: () => void): void {
  try {
    check();
  } catch (error) {
    if (!(error instanceof RuleRefusal)) throw error;
    if (error.rule === 'invalid_input') throw problem(400, error.message, { type: '/problems/validation' });
    throw problem(422, error.message, { rule: error.rule });
  }
}
