import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { Router } from 'express';
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { appendAuditEvent } from '../db/audit';
import {
  type ReferenceKind,
  PRIMARY_KEYS,
  agencyOwned,
  clientRow,
  clinicianRow,
  findReference,
  listReferences,
  providerRow,
  upsertReference,
} from '../db/reference';
import type { Database } from '../db/schema';
import type { User } from '../db/users';
import { PERMISSIONS, type Permission } from '../domain/roles';
import { requireRoles, userOf } from './auth';
import { tellOpenCases } from './client-facts';
import { deniedRead } from './denied';
import { actorOf, parse } from './http';
import { problem } from './problem';
import { clientBody, clinicianBody, listQuery, providerBody, referenceIdParams } from './schemas';

interface ReferenceSpec {
  kind: ReferenceKind;
  singular: string;
  schema: z.ZodType;
  toRow: (id: string, body: any) => Record<string, string | number | boolean>;
  toView: (row: any) => Record<string, unknown>;
}

export const REFERENCE_SPECS: ReferenceSpec[] = [
  {
    kind: 'clients',
    singular: 'client',
    schema: clientBody,
    toRow: clientRow,
    toView: (r) => ({
      clientId: r.client_id,
      agencyId: r.agency_id,
      name: r.name,
      counselorId: r.counselor_id,
      active: r.active,
      riskFlags: r.risk_flags,
      contact: r.contact,
      hasSubstanceUseRecords: r.has_sud_records,
      needs: r.needs,
    }),
  },
  {
    kind: 'clinicians',
    singular: 'clinician',
    schema: clinicianBody,
    toRow: clinicianRow,
    toView: (r) => ({
      clinicianId: r.clinician_id,
      agencyId: r.agency_id,
      name: r.name,
      capacity: r.capacity,
      specialties: r.specialties,
      active: r.active,
      contact: r.contact,
    }),
  },
  {
    kind: 'providers',
    singular: 'provider',
    schema: providerBody,
    toRow: providerRow,
    toView: (r) => ({ providerId: r.provider_id, name: r.name, contact: r.contact, specialties: r.specialties }),
  },
];

/** Clients are seen within their agency, by a counselor only when they are theirs, never by compliance here. */
function visible(user: User, kind: ReferenceKind, row: Record<string, unknown>): boolean {
  if (!agencyOwned(kind)) return true;
  if (row.agency_id !== user.agencyId) return false;
  if (kind !== 'clients') return true;
  if (user.role === 'compliance') return false;
  return user.role !== 'counselor' || row.counselor_id === user.id;
}

/** The permission that writes each kind of record. */
export const REFERENCE_PERMISSIONS: Record<ReferenceKind, Permission> = {
  clients: 'manageClients',
  clinicians: 'manageClinicians',
  providers: 'manageProviders',
};

/**
 * Reference data the transfers need: clients, clinicians, outside providers. Created, edited, listed by cursor,
 * always within the caller's agency. A change to a client record reaches the client's open cases in the same request.
 */
export function referenceRoutes({ db, temporal }: { db: Kysely<Database>; temporal: Client }): Router {
  const router = Router();

  for (const spec of REFERENCE_SPECS) {
    const key = PRIMARY_KEYS[spec.kind];

    /** Creates or replaces one record; the answer says whether anything changed. */
    router.put(`/v1/${spec.kind}/:id`, async (req, res) => {
      const actor = actorOf(req);
      const user = userOf(req);
      // Outside providers are one directory shared by every agency: only admins edit it.
      requireRoles(user, PERMISSIONS[REFERENCE_PERMISSIONS[spec.kind]], `managing ${spec.kind}`);
      const { id } = parse(referenceIdParams, req.params, 'path');
      const body = parse(spec.schema, req.body, 'body') as { agencyId?: string };
      if (body.agencyId !== undefined && body.agencyId !== user.agencyId) {
        throw problem(403, `you act for agency ${user.agencyId}, not ${body.agencyId}`);
      }
      const owned = agencyOwned(spec.kind) ? { ...body, agencyId: user.agencyId } : body;
      const outcome = await db.transaction().execute(async (trx) => {
        const before = await findReference(trx, spec.kind, user.agencyId, id);
        const result = await upsertReference(trx, spec.kind, spec.toRow(id, owned));
        if (result !== 'unchanged') {
          await appendAuditEvent(trx, {
            eventKey: `${spec.singular}:${id}:${randomUUID()}`,
            agencyId: agencyOwned(spec.kind) ? user.agencyId : null,
            actor,
            action: `${spec.singular}.${result}`,
            clientId: spec.kind === 'clients' ? id : null,
            outcome: 'done',
            requestId: req.id,
            sourceAddress: req.ip ?? null,
            ...(spec.kind === 'clients' && before ? { before: safetyFacts(before) } : {}),
          });
        }
        return result;
      });
      const row = (await findReference(db, spec.kind, user.agencyId, id))!;
      // The record is the source of a client's safety facts: every open case re-reads them now.
      const casesTold =
        spec.kind === 'clients' ? await tellOpenCases(db, temporal, user.agencyId, [id], { requestId: req.id }) : [];
      res.status(outcome === 'inserted' ? 201 : 200).json({
        ...spec.toView(row),
        outcome,
        ...(spec.kind === 'clients' ? { openCasesTold: casesTold.length } : {}),
      });
    });

    router.get(`/v1/${spec.kind}/:id`, async (req, res) => {
      const user = userOf(req);
      const { id } = parse(referenceIdParams, req.params, 'path');
      const row = await findReference(db, spec.kind, user.agencyId, id);
      if (!row || !visible(user, spec.kind, row))
        return deniedRead(db, req, user, { kind: spec.singular, id }, `no ${spec.singular} ${id}`);
      res.json(spec.toView(row));
    });

    /** A page, ordered by id; `next` is the cursor of the following page, null at the end. */
    router.get(`/v1/${spec.kind}`, async (req, res) => {
      const user = userOf(req);
      if (spec.kind === 'clients') requireRoles(user, PERMISSIONS.listClients, 'listing clients');
      const query = parse(listQuery, req.query, 'query');
      // A counselor lists only their own clients, whatever they ask for.
      const counselorId = user.role === 'counselor' ? user.id : query.counselorId;
      const rows = await listReferences(db, spec.kind, {
        agencyId: user.agencyId,
        ...(query.cursor ? { after: query.cursor } : {}),
        limit: query.limit + 1,
        ...(counselorId ? { counselorId } : {}),
      });
      const page = rows.slice(0, query.limit);
      res.json({ items: page.map(spec.toView), next: rows.length > query.limit ? page.at(-1)?.[key] : null });
    });
  }
  return router;
}

/** The safety facts of a client row, for the audit trail's before/after. */
function safetyFacts(row: Record<string, unknown>) {
  return {
    counselorId: row.counselor_id,
    riskFlags: row.risk_flags,
    contact: row.contact,
    hasSubstanceUseRecords: row.has_sud_records,
  };
}
