import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Kysely } from 'kysely';
import { appendAuditEvent } from '../db/audit';
import { findAgencyPolicy, setAgencyPolicy, withDefaults } from '../db/policies';
import type { Database } from '../db/schema';
import { requireRoles, userOf } from './auth';
import { PERMISSIONS } from '../domain/roles';
import { actorOf, parse } from './http';
import { problem } from './problem';
import { agencyParams, policyBody } from './schemas';

/** Agency policy: the durations and counts every new case of the agency copies at its start. */
export function agencyRoutes({ db }: { db: Kysely<Database> }): Router {
  const router = Router();

  router.get('/v1/agencies/:agencyId/policy', async (req, res) => {
    const { agencyId } = parse(agencyParams, req.params, 'path');
    if (userOf(req).agencyId !== agencyId) throw problem(404, `no agency ${agencyId}`);
    const row = await findAgencyPolicy(db, agencyId);
    res.json({
      agencyId,
      agencyName: row?.agency_name ?? null,
      agencyPhone: row?.agency_phone ?? null,
      policy: withDefaults(row?.policy),
    });
  });

  /** Sets the policy; running cases keep the one they started with. */
  router.put('/v1/agencies/:agencyId/policy', async (req, res) => {
    const actor = actorOf(req);
    requireRoles(userOf(req), PERMISSIONS.setPolicy, 'setting agency policy');
    const { agencyId } = parse(agencyParams, req.params, 'path');
    if (userOf(req).agencyId !== agencyId) throw problem(404, `no agency ${agencyId}`);
    const body = parse(policyBody, req.body, 'body');
    const policy = withDefaults(body.policy);
    await db.transaction().execute(async (trx) => {
      const before = await findAgencyPolicy(trx, agencyId);
      await setAgencyPolicy(trx, agencyId, {
        agencyName: body.agencyName,
        agencyPhone: body.agencyPhone,
        policy,
        updatedBy: actor.id,
      });
      await appendAuditEvent(trx, {
        eventKey: `policy:${agencyId}:${randomUUID()}`,
        agencyId,
        actor,
        action: 'agency.policy_set',
        outcome: 'done',
        requestId: req.id,
        sourceAddress: req.ip ?? null,
        before: before?.policy ?? null,
        after: policy,
      });
    });
    res.json({ agencyId, agencyName: body.agencyName, agencyPhone: body.agencyPhone, policy });
  });

  return router;
}
