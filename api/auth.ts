import { isIPv6 } from 'node:net';
import type { RequestHandler, Response } from 'express';
import type { Kysely } from 'kysely';
import type { RequestCount } from '../db/rate-limits';
import type { Database } from '../db/schema';
import { type User, signInCounted, userForToken } from '../db/users';
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

/**
 * Signs a request in, in one round trip (`signInCounted`): a fixed window of a minute per client address, counted
 * before the token decides anything, so a flood of bad tokens is throttled; then the token's user; then a window per
 * token, so each token spends its own budget. Counted in PostgreSQL, so every API replica spends one budget. Past a
 * budget: 429 with Retry-After; a missing, malformed or bad token: 401.
 */
export function signIn(
  db: Kysely<Database>,
  limits: { perAddressPerMinute: number; perTokenPerMinute: number },
): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization');
    const match = header ? BEARER.exec(header) : null;
    const counted = await signInCounted(db, {
      addressKey: addressKey(req.ip),
      token: match?.[1],
      addressLimit: limits.perAddressPerMinute,
      windowSeconds: 60,
    });
    tooMany(res, counted.address, limits.perAddressPerMinute, 'from this address');
    if (!header) throw problem(401, 'sign in: send an Authorization: Bearer <token> header');
    if (!match || !counted.check) throw problem(401, 'the Authorization header must be "Bearer <token>"');
    if ('problem' in counted.check) throw problem(401, counted.check.problem);
    req.user = counted.check.user;
    req.tokenId = counted.check.tokenId;
    if (counted.token) tooMany(res, counted.token, limits.perTokenPerMinute, 'with this token');
    next();
  };
}

function tooMany(res: Response, counted: RequestCount, perMinute: number, per: string): void {
  if (counted.count <= perMinute) return;
  res.set('Retry-After', String(counted.resetsInSeconds));
  throw problem(429, `more than ${perMinute} requests a minute ${per}; slow down`);
}
