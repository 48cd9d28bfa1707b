import { isIPv6 } from 'node:net';
import type { Request, RequestHandler } from 'express';
import type { Kysely } from 'kysely';
import { countRequest } from '../db/rate-limits';
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

/**
 * A fixed window of a minute per key, counted in PostgreSQL so every API replica spends one budget: at most
 * `perMinute` requests; past it, 429 with Retry-After. A request `keyOf` gives no key for is not counted.
 */
export function rateLimit(
  db: Kysely<Database>,
  options: { perMinute: number; keyOf: (req: Request) => string | undefined; per: string },
): RequestHandler {
  return async (req, res, next) => {
    const key = options.keyOf(req);
    if (!key) return next();
    const { count, resetsInSeconds } = await countRequest(db, key, 60);
    if (count > options.perMinute) {
      res.set('Retry-After', String(resetsInSeconds));
      throw problem(429, `more than ${options.perMinute} requests a minute ${options.per}; slow down`);
    }
    next();
  };
}

/**
 * The key a client address is limited by: an IPv4 address, or an IPv6 address's /64 (one subscriber's usual
 * allocation, which would otherwise hand out fresh budgets by the billion).
 */
export function addressKey(ip: string | undefined): string {
  if (!ip) return 'address:unknown';
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (v4) return `address:${v4[1]}`;
  if (!isIPv6(ip)) return `address:${ip}`;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `address:${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
