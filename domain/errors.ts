/**
 * Every named failure of the service, in one place. Activities throw them as
 * non-retryable ApplicationFailures with these types; the API maps them to statuses.
 */
export const FAILURE_TYPES = ['NotFound', 'Conflict', 'RuleViolation', 'InvalidInput'] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

/** Failures that no retry can fix: workflows list them as non-retryable. */
export const NON_RETRYABLE_FAILURES: FailureType[] = ['NotFound', 'Conflict', 'RuleViolation', 'InvalidInput'];
