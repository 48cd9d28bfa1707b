import type { ErrorRequestHandler } from 'express';
import {
  ActivityFailure,
  ApplicationFailure,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
} from '@temporalio/common';
import { ServiceError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { FailureType } from '../domain/errors';

/** An RFC 9457 problem details body. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: { field: string; message: string }[];
  rule?: string;
  /** The dependency that is down, on a 503. */
  dependency?: 'postgres' | 'temporal';
}

/** A failure the API reports as it is, with its status. */
export class HttpProblem extends Error {
  constructor(readonly problem: Omit<Problem, 'type'> & { type?: string }) {
    super(problem.detail);
  }
}

const STATUS_BY_FAILURE: Record<FailureType, number> = {
  NotFound: 404,
  Conflict: 409,
  RuleViolation: 422,
  InvalidInput: 400,
};

export const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problem(status: number, detail: string, extra: Partial<Problem> = {}): HttpProblem {
  return new HttpProblem({ title: TITLES[status] ?? 'Error', status, detail, ...extra });
}

export function validationProblem(error: z.ZodError, where: 'body' | 'query' | 'path' | 'header'): HttpProblem {
  const errors = error.issues.flatMap((issue) => {
    const field = (path: PropertyKey[]) => [where, ...path.map(String)].join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: field([...issue.path, key]), message: 'unknown field' }));
    }
    return [{ field: field(issue.path), message: issue.message }];
  });
  return problem(400, `the request ${where} is invalid: ${errors.map((e) => e.field).join(', ')}`, {
    type: '/problems/validation',
    errors,
  });
}

// Connection-level failures of Postgres: the database is down or unreachable, not a bug.
const PG_UNAVAILABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
]);

// Duck-typed: socket errors come from Node's own realm, where `instanceof Error` may not hold.
function isPostgresUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message, errors } = error as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof code === 'string' && PG_UNAVAILABLE.has(code)) return true;
  if (Array.isArray(errors)) return errors.some(isPostgresUnavailable);
  return (
    typeof message === 'string' &&
    /timeout exceeded when trying to connect|Connection terminated unexpectedly/.test(message)
  );
}

function isTemporalUnavailable(error: unknown): boolean {
  // gRPC 14 UNAVAILABLE and 4 DEADLINE_EXCEEDED: the server did not answer.
  if (!(error instanceof ServiceError)) return false;
  const code = (error.cause as { code?: unknown } | undefined)?.code;
  return code === 14 || code === 4 || /UNAVAILABLE|DEADLINE_EXCEEDED|connect/i.test(error.message);
}

// What body-parser's error types mean, in our words: its messages may quote the body, so none is passed on.
const UNREADABLE_BODY: Record<string, Pick<Problem, 'status' | 'detail'> & { type?: string }> = {
  'entity.parse.failed': { status: 400, detail: 'the request body is not valid JSON', type: '/problems/validation' },
  'entity.too.large': { status: 413, detail: 'the request body is too large' },
  'charset.unsupported': { status: 415, detail: 'the request body must be JSON in UTF-8' },
  'encoding.unsupported': {
    status: 415,
    detail: 'the request body must be sent as is or with Content-Encoding gzip, deflate or br',
  },
  'request.aborted': { status: 400, detail: 'the request body was cut short' },
  'request.size.invalid': { status: 400, detail: 'the request body does not match its Content-Length' },
};

/**
 * A request Express could not read keeps its 4xx: body-parser's errors (http-errors, `expose: true`) and the
 * router's URIError for a malformed percent-escape in a path parameter.
 */
function unreadableRequest(error: unknown): HttpProblem | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { status, statusCode, expose, type } = error as Record<string, unknown>;
  const code = typeof status === 'number' ? status : statusCode;
  if (typeof code !== 'number' || code < 400 || code > 499) return undefined;
  if (error instanceof URIError) {
    return problem(400, 'the request path has a malformed percent-escape', { type: '/problems/validation' });
  }
  if (expose !== true) return undefined;
  const known = typeof type === 'string' ? UNREADABLE_BODY[type] : undefined;
  if (known) {
    const { status: knownStatus, detail, ...extra } = known;
    return problem(knownStatus, detail, extra);
  }
  // zlib's own error, which body-parser passes on when the body is not what its Content-Encoding says.
  if ('errno' in error) return problem(code, 'the request body is not compressed as its Content-Encoding says');
  return problem(code, 'the request could not be read');
}

/** Turns any thrown error into a problem; an unknown one becomes a 500 that hides its details. */
export function toProblem(error: unknown): { problem: Problem; unexpected: boolean } {
  if (error instanceof HttpProblem) {
    return { problem: { type: 'about:blank', ...error.problem }, unexpected: false };
  }
  if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
    return toProblem(error.cause);
  }
  // An activity of the update refused its data (InvalidInput, NotFound, …): answer with that refusal.
  if (
    error instanceof WorkflowUpdateFailedError &&
    error.cause instanceof ActivityFailure &&
    error.cause.cause instanceof ApplicationFailure
  ) {
    return toProblem(error.cause.cause);
  }
  if (error instanceof ApplicationFailure && error.type && error.type in STATUS_BY_FAILURE) {
    const status = STATUS_BY_FAILURE[error.type as FailureType];
    const rule = (error.details?.[0] as { rule?: string } | undefined)?.rule;
    return {
      problem: {
        type: `/problems/${error.type}`,
        title: TITLES[status] ?? 'Error',
        status,
        detail: error.message,
        ...(rule ? { rule } : {}),
      },
      unexpected: false,
    };
  }
  if (error instanceof WorkflowNotFoundError) {
    return toProblem(problem(404, 'no such case'));
  }
  if (error instanceof WorkflowExecutionAlreadyStartedError) {
    return toProblem(problem(409, 'a case with this id already exists'));
  }
  if (error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    return toProblem(
      problem(
        503,
        'the case did not answer in time (is the worker running?); the action may still be applied — check the case before retrying',
        { dependency: 'temporal' },
      ),
    );
  }
  if (isPostgresUnavailable(error)) {
    return toProblem(
      problem(503, 'the database (PostgreSQL) is unavailable; try again shortly', { dependency: 'postgres' }),
    );
  }
  if (isTemporalUnavailable(error)) {
    return toProblem(
      problem(503, 'the workflow engine (Temporal) is unavailable; try again shortly', { dependency: 'temporal' }),
    );
  }
  const unreadable = unreadableRequest(error);
  if (unreadable) return toProblem(unreadable);
  return {
    problem: {
      type: 'about:blank',
      title: TITLES[500]!,
      status: 500,
      detail: 'an unexpected error occurred; it has been logged',
    },
    unexpected: true,
  };
}

/** The one error middleware: every failure leaves as application/problem+json. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    const { problem: body, unexpected } = toProblem(error);
    if (unexpected) logger.error({ err: error, reqId: req.id }, 'unexpected error');
    res
      .status(body.status)
      .type('application/problem+json')
      .json({ ...body, instance: req.originalUrl });
  };
}
