import type { Request } from 'express';
import type { z } from 'zod';
import type { Actor } from '../domain/case';
import { problem, validationProblem } from './problem';
import { actorHeaders } from './schemas';

/** Parses one part of a request with its schema, once; a failure is a 400 naming every bad field. */
export function parse<T extends z.ZodType>(schema: T, value: unknown, where: 'body' | 'path' | 'header'): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw validationProblem(result.error, where);
  return result.data;
}

export function actorOf(req: Request): Actor {
  const result = actorHeaders.safeParse(req.headers);
  if (!result.success) {
    throw problem(401, 'say who is acting: X-Actor-Id and X-Actor-Role headers are required', {
      errors: validationProblem(result.error, 'header').problem.errors,
    });
  }
  return { id: result.data['x-actor-id'], role: result.data['x-actor-role'] };
}
