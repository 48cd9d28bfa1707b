import { ApplicationFailure } from '@temporalio/activity';
import type { FailureType } from '../domain/errors';

const INVALID_INPUT: FailureType = 'InvalidInput';

// SQLSTATE class 22 (data exception) and 23 (integrity constraint violation): the same data fails the same way
// on every attempt. Each is named in our words: PostgreSQL's message, detail and context can quote the value.
const DATA_ERRORS: Record<string, string> = {
  '22001': 'a value is too long for its column',
  '22003': 'a number is out of range',
  '22007': 'a date or time is malformed',
  '22008': 'a date or time is out of range',
  '22021': 'a character is not valid UTF-8 (such as NUL)',
  '22P02': 'a value is malformed for its type (such as JSON with a lone surrogate)',
  '22P05': 'a character cannot be stored (such as NUL in JSON)',
  '23502': 'a required value is missing',
  '23503': 'a value refers to a row that does not exist',
  '23514': 'a value breaks a check constraint',
};

// A unique violation is most often another attempt (one that timed out but ran on) writing the row first: an
// activity that looks for its row before writing it finds it on the retry. One that means a conflict of the
// business (a second open case) is the activity's to catch and throw as a Conflict.
const RETRYABLE = new Set(['23505']);

function dataFailure(error: unknown): ApplicationFailure | undefined {
  if (error instanceof ApplicationFailure || typeof error !== 'object' || error === null) return undefined;
  const { code } = error as { code?: unknown };
  if (typeof code !== 'string' || !/^2[23][0-9A-Z]{3}$/.test(code) || RETRYABLE.has(code)) return undefined;
  const description =
    DATA_ERRORS[code] ?? (code.startsWith('22') ? 'a value is not valid for its column' : 'a constraint refused it');
  // No cause: Temporal would keep the PostgreSQL error, message and all, in the workflow's history.
  return ApplicationFailure.nonRetryable(
    `the data could not be stored: ${description} (SQLSTATE ${code})`,
    INVALID_INPUT,
  );
}

/**
 * The same activities, except that data PostgreSQL refuses (SQLSTATE class 22, and class 23 but for a unique
 * violation) fails at once as a non-retryable InvalidInput instead of being retried forever. Connection errors and
 * every other error, ApplicationFailures included, pass through unchanged.
 */
export function nonRetryableDataErrors<T extends Record<string, (...args: any[]) => Promise<any>>>(activities: T): T {
  const wrapped: Record<string, (...args: any[]) => Promise<any>> = {};
  for (const [name, activity] of Object.entries(activities)) {
    wrapped[name] = async (...args: any[]) => {
      try {
        return await activity.apply(activities, args);
      } catch (error) {
        throw dataFailure(error) ?? error;
      }
    };
  }
  return wrapped as T;
}
