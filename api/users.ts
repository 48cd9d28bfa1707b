import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { appendAuditEvent } from '../db/audit';
import type { Database } from '../db/schema';
import { createToken, findUser, revokeToken, upsertUser } from '../db/users';
import { ROLES } from '../domain/case';
import { PERMISSIONS, type Permission, may } from '../domain/roles';
import { findAgencyPolicy } from '../db/policies';
import { requireRoles, userOf } from './auth';
import { actorOf, parse } from './http';
import { problem } from './problem';
import { email, id, text } from './schemas';

export const userBody = z
  .strictObject({
    role: z.enum(ROLES),
    name: text(200),
    email: email.nullish().describe('Where task and digest emails go; none: no email'),
  })
  .meta({ id: 'User' });
export const userParams = z.strictObject({ userId: id });
export const tokenParams = z.strictObject({ tokenId: z.uuid() });
export const tokenBody = z
  .strictObject({
    label: text(100).default('api'),
    days: z.number().int().min(1).max(365).default(90),
  })
  .meta({ id: 'NewToken' });

/** Admins manage the users of their agency and their tokens (shown once, stored as a hash). */
export function userRoutes({ db }: { db: Kysely<Database> }): Router {
  const router = Router();

  /** Who the caller is and what the role matrix lets them do: the page shows only the actions they may take. */
  router.get('/v1/me', async (req, res) => {
    const user = userOf(req);
    const agency = await findAgencyPolicy(db, user.agencyId);
    res.json({
      userId: user.id,
      name: user.name,
      role: user.role,
      agencyId: user.agencyId,
      agencyName: agency?.agency_name ?? null,
      permissions: (Object.keys(PERMISSIONS) as Permission[]).filter((p) => may(user.role, p)),
    });
  });

  router.put('/v1/users/:userId', async (req, res) => {
    const actor = actorOf(req);
    const admin = userOf(req);
    requireRoles(admin, PERMISSIONS.manageUsers, 'managing users');
    const { userId } = parse(userParams, req.params, 'path');
    const body = parse(userBody, req.body, 'body');
    const existing = await findUser(db, admin.agencyId, userId);
    await db.transaction().execute(async (trx) => {
      await upsertUser(trx, {
        id: userId,
        role: body.role,
        agencyId: admin.agencyId,
        name: body.name,
        email: body.email,
      });
      await appendAuditEvent(trx, {
        eventKey: `user:${userId}:${randomUUID()}`,
        agencyId: admin.agencyId,
        actor,
        action: existing ? 'user.updated' : 'user.created',
        outcome: 'done',
        requestId: req.id,
        sourceAddress: req.ip ?? null,
        after: { userId, role: body.role },
      });
    });
    res.status(existing ? 200 : 201).json({ userId, role: body.role, agencyId: admin.agencyId, name: body.name });
  });

  /** A new token for a user: the only time it is shown. */
  router.post('/v1/users/:userId/tokens', async (req, res) => {
    const actor = actorOf(req);
    const admin = userOf(req);
    requireRoles(admin, PERMISSIONS.manageUsers, 'issuing tokens');
    const { userId } = parse(userParams, req.params, 'path');
    const body = parse(tokenBody, req.body, 'body');
    if (!(await findUser(db, admin.agencyId, userId))) throw problem(404, `no user ${userId}`);
    const created = await createToken(db, { agencyId: admin.agencyId, userId }, { label: body.label, days: body.days });
    await appendAuditEvent(db, {
      eventKey: `token:${created.tokenId}:issued`,
      agencyId: admin.agencyId,
      actor,
      action: 'token.issued',
      outcome: 'done',
      requestId: req.id,
      sourceAddress: req.ip ?? null,
      after: { userId, tokenId: created.tokenId, expiresAt: created.expiresAt.toISOString() },
    });
    res
      .status(201)
      .json({ tokenId: created.tokenId, token: created.token, expiresAt: created.expiresAt.toISOString() });
  });

  router.post('/v1/tokens/:tokenId/revocation', async (req, res) => {
    const actor = actorOf(req);
    const admin = userOf(req);
    requireRoles(admin, PERMISSIONS.manageUsers, 'revoking tokens');
    const { tokenId } = parse(tokenParams, req.params, 'path');
    if (!(await revokeToken(db, admin.agencyId, tokenId))) throw problem(404, `no token ${tokenId}`);
    await appendAuditEvent(db, {
      eventKey: `token:${tokenId}:revoked`,
      agencyId: admin.agencyId,
      actor,
      action: 'token.revoked',
      outcome: 'done',
      requestId: req.id,
      sourceAddress: req.ip ?? null,
    });
    res.json({ tokenId, revoked: true });
  });

  return router;
}
