import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { appendAuditEvent } from '../db/audit';
import type { Database } from '../db/schema';
import { createToken, revokeToken, upsertUser } from '../db/users';
import { ROLES } from '../domain/case';
import { requireRoles, userOf } from './auth';
import { actorOf, parse } from './http';
import { problem } from './problem';
import { id } from './schemas';

export const userBody = z
  .strictObject({ role: z.enum(ROLES), name: z.string().trim().min(1).max(200) })
  .meta({ id: 'User' });
export const tokenBody = z
  .strictObject({
    label: z.string().trim().min(1).max(100).default('api'),
    days: z.number().int().min(1).max(365).default(90),
  })
  .meta({ id: 'NewToken' });

/** Admins manage the users of their agency and their tokens (shown once, stored as a hash). */
export function userRoutes({ db }: { db: Kysely<Database> }): Router {
  const router = Router();

  router.put('/v1/users/:userId', async (req, res) => {
    const actor = actorOf(req);
    const admin = userOf(req);
    requireRoles(admin, ['admin'], 'managing users');
    const { userId } = parse(z.strictObject({ userId: id }), req.params, 'path');
    const body = parse(userBody, req.body, 'body');
    const existing = await db.selectFrom('users').select('agency_id').where('user_id', '=', userId).executeTakeFirst();
    if (existing && existing.agency_id !== admin.agencyId) throw problem(404, `no user ${userId}`);
    await db.transaction().execute(async (trx) => {
      await upsertUser(trx, { id: userId, role: body.role, agencyId: admin.agencyId, name: body.name });
      await appendAuditEvent(trx, {
        eventKey: `user:${userId}:${randomUUID()}`,
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
    requireRoles(admin, ['admin'], 'issuing tokens');
    const { userId } = parse(z.strictObject({ userId: id }), req.params, 'path');
    const body = parse(tokenBody, req.body, 'body');
    const user = await db.selectFrom('users').select('agency_id').where('user_id', '=', userId).executeTakeFirst();
    if (!user || user.agency_id !== admin.agencyId) throw problem(404, `no user ${userId}`);
    const created = await createToken(db, userId, { label: body.label, days: body.days });
    await db.transaction().execute((trx) =>
      appendAuditEvent(trx, {
        eventKey: `token:${created.tokenId}:issued`,
        actor,
        action: 'token.issued',
        outcome: 'done',
        requestId: req.id,
        sourceAddress: req.ip ?? null,
        after: { userId, tokenId: created.tokenId, expiresAt: created.expiresAt.toISOString() },
      }),
    );
    res
      .status(201)
      .json({ tokenId: created.tokenId, token: created.token, expiresAt: created.expiresAt.toISOString() });
  });

  router.post('/v1/tokens/:tokenId/revocation', async (req, res) => {
    const actor = actorOf(req);
    const admin = userOf(req);
    requireRoles(admin, ['admin'], 'revoking tokens');
    const { tokenId } = parse(z.strictObject({ tokenId: z.uuid() }), req.params, 'path');
    const owner = await db
      .selectFrom('api_tokens as t')
      .innerJoin('users as u', 'u.user_id', 't.user_id')
      .select('u.agency_id')
      .where('t.token_id', '=', tokenId)
      .executeTakeFirst();
    if (!owner || owner.agency_id !== admin.agencyId) throw problem(404, `no token ${tokenId}`);
    await revokeToken(db, tokenId);
    await db.transaction().execute((trx) =>
      appendAuditEvent(trx, {
        eventKey: `token:${tokenId}:revoked`,
        actor,
        action: 'token.revoked',
        outcome: 'done',
        requestId: req.id,
        sourceAddress: req.ip ?? null,
      }),
    );
    res.json({ tokenId, revoked: true });
  });

  return router;
}
