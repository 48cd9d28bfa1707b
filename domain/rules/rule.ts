/** The rules of DOMAIN.md by name, and the refusal every rule module throws. */

export const RULES = {
  separationOfDuties: 'separation_of_duties',
  noAbandonment: 'no_abandonment',
  riskFirst: 'risk_first',
  safeContact: 'safe_contact',
  consentBeforeDisclosure: 'consent_before_disclosure',
  clientAutonomy: 'client_autonomy',
  deadlines: 'deadlines',
  /** Not rules of the process but of access and order: who may act, and whether the step allows it. */
  role: 'role',
  step: 'step',
} as const;
export type RuleName = (typeof RULES)[keyof typeof RULES];

/** A refusal: the rule that refused, and what is missing. */
export class RuleRefusal extends Error {
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

export function refuse(rule: string, message: string): never {
  throw new RuleRefusal(rule, message);
}

/** What holds a case back, by the rule that holds it; `due` for a deadline. */
export interface Blocker {
  rule: string;
  detail: string;
  due?: string;
}
