import type { RequestHandler } from 'express';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema';
import { type User, userForToken } from '../db/users';
import type { Role } from '../domain/case';
import { problem } from './problem';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      user?: User;
      tokenId?: string;
    }
  }
}

const BEARER = /^Bearer ([A-Za-z0-9_-]{10,200})$/;

/** Who is calling: the user behind a bearer token. Every route but health, docs and metrics needs one. */
export function authenticate(db: Kysely<Database>): RequestHandler {
  return async (req, _res, next) => {
    const header = req.get('authorization');
    if (!header) throw problem(401, 'sign in: send an Authorization: Bearer <token> header');
    const match = BEARER.exec(header);
    if (!match) throw problem(401, 'the Authorization header must be "Bearer <token>"');
    const check = await userForToken(db, match[1]!);
    if ('problem' in check) throw problem(401, check.problem);
    req.user = check.user;
    req.tokenId = check.tokenId;
    next();
  };
}

export function userOf(req: Express.Request): User {
  if (!req.user) throw problem(401, 'sign in: send an Authorization: Bearer <token> header');
  return req.user;
}

/** Function-level access: the route's roles, or 403 naming them. */
export function requireRoles(user: User, roles: readonly Role[], what: string): void {
  if (!roles.includes(user.role)) throw problem(403, `${what} is for ${roles.join(', ')}; you are ${user.role}`);
}

/** A fixed window per token: at most `perMinute` requests; past it, 429 with Retry-After. */
export function rateLimit(perMinute: number): RequestHandler {
  const windows = new Map<string, { start: number; count: number }>();
  return (req, res, next) => {
    const key = req.tokenId;
    if (!key) return next();
    const now = Date.now();
    let window = windows.get(key);
    if (!window || now - window.start >= 60_000) {
      window = { start: now, count: 0 };
      windows.set(key, window);
      if (windows.size > 10_000) {
        for (const [k, w] of windows) if (now - w.start >= 60_000) windows.delete(k);
      }
    }
    if (++window.count > perMinute) {
      res.set('Retry-After', String(Math.ceil((window.start + 60_000 - now) / 1000)));
      throw problem(429, `more than ${perMinute} requests a minute with this token; slow down`);
    }
    next();
  };
}
