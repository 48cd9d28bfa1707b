import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { appendAuditEvent } from '../db/audit';
import {
  type ReferenceKind,
  PRIMARY_KEYS,
  clientRow,
  clinicianRow,
  providerRow,
  upsertReference,
} from '../db/reference';
import type { Database } from '../db/schema';
import type { User } from '../db/users';
import { requireRoles, userOf } from './auth';
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
  if (kind === 'providers') return true;
  if (row.agency_id !== user.agencyId) return false;
  if (kind !== 'clients') return true;
  if (user.role === 'compliance') return false;
  return user.role !== 'counselor' || row.counselor_id === user.id;
}

/** Reference data the transfers need: clients, clinicians, outside providers. Created, edited, listed by cursor. */
export function referenceRoutes({ db }: { db: Kysely<Database> }): Router {
  const router = Router();
  const dynamic = db as unknown as Kysely<any>;

  for (const spec of REFERENCE_SPECS) {
    const key = PRIMARY_KEYS[spec.kind];

    /** Creates or replaces one record; the answer says whether anything changed. */
    router.put(`/v1/${spec.kind}/:id`, async (req, res) => {
      const actor = actorOf(req);
      const user = userOf(req);
      // Outside providers are one directory shared by every agency: only admins edit it.
      requireRoles(
        user,
        spec.kind === 'providers' ? ['admin'] : ['staff', 'clinical_director', 'admin'],
        `managing ${spec.kind}`,
      );
      const { id } = parse(referenceIdParams, req.params, 'path');
      const body = parse(spec.schema, req.body, 'body');
      const agencyId = (body as { agencyId?: string }).agencyId;
      if (agencyId !== undefined && agencyId !== user.agencyId) {
        throw problem(403, `you act for agency ${user.agencyId}, not ${agencyId}`);
      }
      const existing = await dynamic.selectFrom(spec.kind).selectAll().where(key, '=', id).executeTakeFirst();
      if (existing && 'agency_id' in existing && existing.agency_id !== user.agencyId)
        throw problem(404, `no ${spec.singular} ${id}`);
      const outcome = await db.transaction().execute(async (trx) => {
        const result = await upsertReference(trx, spec.kind, spec.toRow(id, body));
        if (result !== 'unchanged') {
          await appendAuditEvent(trx, {
            eventKey: `${spec.singular}:${id}:${randomUUID()}`,
            actor,
            action: `${spec.singular}.${result}`,
            clientId: spec.kind === 'clients' ? id : null,
            outcome: 'done',
            requestId: req.id,
            sourceAddress: req.ip ?? null,
          });
        }
        return result;
      });
      const row = await dynamic.selectFrom(spec.kind).selectAll().where(key, '=', id).executeTakeFirstOrThrow();
      res.status(outcome === 'inserted' ? 201 : 200).json({ ...spec.toView(row), outcome });
    });

    router.get(`/v1/${spec.kind}/:id`, async (req, res) => {
      const user = userOf(req);
      const { id } = parse(referenceIdParams, req.params, 'path');
      const row = await dynamic.selectFrom(spec.kind).selectAll().where(key, '=', id).executeTakeFirst();
      if (!row || !visible(user, spec.kind, row)) throw problem(404, `no ${spec.singular} ${id}`);
      res.json(spec.toView(row));
    });

    /** A page, ordered by id; `next` is the cursor of the following page, null at the end. */
    router.get(`/v1/${spec.kind}`, async (req, res) => {
      const user = userOf(req);
      if (spec.kind === 'clients')
        requireRoles(user, ['staff', 'counselor', 'clinical_director', 'admin'], 'listing clients');
      const query = parse(listQuery, req.query, 'query');
      let select = dynamic
        .selectFrom(spec.kind)
        .selectAll()
        .orderBy(key)
        .limit(query.limit + 1);
      if (query.cursor) select = select.where(key, '>', query.cursor);
      if (spec.kind !== 'providers') select = select.where('agency_id', '=', user.agencyId);
      // A counselor lists only their own clients, whatever they ask for.
      const counselorId = user.role === 'counselor' ? user.id : query.counselorId;
      if (counselorId && spec.kind === 'clients') select = select.where('counselor_id', '=', counselorId);
      const rows = await select.execute();
      const page = rows.slice(0, query.limit);
      res.json({ items: page.map(spec.toView), next: rows.length > query.limit ? page.at(-1)?.[key] : null });
    });
  }
  return router;
}
