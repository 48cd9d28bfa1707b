import type { Request } from 'express';
import type { z } from 'zod';
import type { Actor } from '../domain/case';
import { validationProblem } from './problem';
import { userOf } from './auth';

/** Parses one part of a request with its schema, once; a failure is a 400 naming every bad field. */
export function parse<T extends z.ZodType>(
  schema: T,
  value: unknown,
  where: 'body' | 'path' | 'query' | 'header',
): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw validationProblem(result.error, where);
  return result.data;
}

/** The acting user, as the workflows and the audit trail record them. */
export function actorOf(req: Request): Actor {
  const user = userOf(req);
  return { id: user.id, role: user.role };
}

/** The route pattern a request matched (`/v1/cases/:caseId`), or `unmatched`: never the path, which may hold ids. */
export function routePattern(req: Request): string {
  const pattern = (req.route as { path?: string | string[] } | undefined)?.path ?? 'unmatched';
  return Array.isArray(pattern) ? pattern.join('|') : pattern;
}
