import { randomUUID } from 'node:crypto';
import { type Request, Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { appendAuditEvent } from '../db/audit';
import { listCases, listTransfers, transferCaseCounts } from '../db/lists';
import { agencyTimeZone } from '../db/policies';
import type { Database } from '../db/schema';
import type { User } from '../db/users';
import { CASE_KINDS, CASE_REASONS, CASE_STATUSES } from '../domain/case';
import { BLOCKING_RULES } from '../domain/case-list';
import { STEPS } from '../domain/process';
import { PERMISSIONS } from '../domain/roles';
import { agencyToday, explain } from '../domain/rules/explain';
import { startOfLocalDay } from '../domain/time';
import { requireRoles, userOf } from './auth';
import { parse } from './http';
import { id } from './schemas';

/** An opaque cursor: base64url of the last row's sort key. */
function cursorOf<T extends z.ZodType>(key: T) {
  return z
    .string()
    .max(400)
    .transform((value, ctx) => {
      try {
        const parsed = key.safeParse(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
        if (parsed.success) return parsed.data;
      } catch {
        // not base64url JSON: the same answer as a well-formed cursor of the wrong shape
      }
      ctx.addIssue({ code: 'custom', message: 'not a cursor this list gave out' });
      return z.NEVER;
    })
    .describe('The `next` of the previous page');
}

const encodeCursor = (key: unknown): string => Buffer.from(JSON.stringify(key)).toString('base64url');

const limit = z.coerce.number().int().min(1).max(200).default(50);

export const caseListQuery = z.strictObject({
  status: z.enum(CASE_STATUSES).optional(),
  step: z.enum(STEPS).optional(),
  counselorId: id.optional().describe("A counselor's list is always their own"),
  clientId: id.optional(),
  transferId: z.uuid().optional(),
  kind: z.enum(CASE_KINDS).optional(),
  escalated: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  blockedBy: z.enum(BLOCKING_RULES).optional().describe('Cases a rule holds now, by its name'),
  dueBefore: z
    .union([z.iso.date(), z.iso.datetime({ offset: true })])
    .optional()
    .describe("Due before this instant; a date means the start of that day in the agency's time zone"),
  cursor: cursorOf(z.tuple([z.union([z.iso.datetime({ offset: true }), z.literal('infinity')]), z.uuid()])).optional(),
  limit,
});

export const transferListQuery = z.strictObject({
  endedWithinDays: z.coerce
    .number()
    .int()
    .min(0)
    .max(366)
    .default(30)
    .describe('Finished, cancelled or failed transfers that ended this many days ago or less are listed too'),
  cursor: cursorOf(z.tuple([z.iso.date(), z.uuid()])).optional(),
  limit,
});

/** A case as a list shows it: ids, where it stands, what is due, what holds it; no client or health detail. */
export const caseListItem = z
  .object({
    caseId: z.string(),
    clientId: z.string(),
    counselorId: z.string(),
    transferId: z.string().nullable(),
    kind: z.enum(CASE_KINDS),
    reason: z.enum(CASE_REASONS),
    status: z.enum(CASE_STATUSES),
    step: z.string(),
    dueAt: z.string().nullable().describe('The next moment the case needs someone; null when nothing is due'),
    noticeDue: z.string().nullable(),
    lastDay: z.string().nullable(),
    escalated: z.boolean(),
    blockers: z.array(z.object({ rule: z.string(), detail: z.string(), due: z.string().optional() })),
  })
  .meta({ id: 'CaseListItem' });
export type CaseListItem = z.infer<typeof caseListItem>;

export const casePage = z
  .object({ items: z.array(caseListItem), next: z.string().nullable() })
  .meta({ id: 'CasePage' });

export const transferListItem = z
  .object({
    transferId: z.string(),
    counselorId: z.string(),
    lastDay: z.string(),
    status: z.enum(['opening', 'open', 'cancelled', 'finished', 'failed']),
    reason: z.string(),
    expected: z.number(),
    started: z.number(),
    casesByStatus: z.record(z.string(), z.number()),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'TransferListItem' });

export const transferPage = z
  .object({ items: z.array(transferListItem), next: z.string().nullable() })
  .meta({ id: 'TransferPage' });

const DAY_MS = 86_400_000;

/** Lists of cases and transfers, from the read model, by cursor; each request is one audit event. */
export function listRoutes({ db }: { db: Kysely<Database> }): Router {
  const router = Router();

  const auditList = (req: Request, user: User, action: string, after: Record<string, unknown>) =>
    appendAuditEvent(db, {
      eventKey: `${action}:${randomUUID()}`,
      agencyId: user.agencyId,
      actor: { id: user.id, role: user.role },
      action,
      outcome: 'done',
      requestId: req.id,
      sourceAddress: req.ip ?? null,
      after,
    });

  /** The agency's cases (a counselor's own), due soonest first, filtered; the read is audited once. */
  router.get('/v1/cases', async (req, res) => {
    const user = userOf(req);
    requireRoles(user, PERMISSIONS.readCase, 'listing cases');
    const query = parse(caseListQuery, req.query, 'query');
    const { cursor, dueBefore, ...filter } = query;
    // A counselor's list is their own caseload, whoever they ask for.
    if (user.role === 'counselor') filter.counselorId = user.id;
    const dueBeforeMs =
      dueBefore === undefined
        ? undefined
        : dueBefore.length === 10
          ? startOfLocalDay(dueBefore, await agencyTimeZone(db, user.agencyId))
          : Date.parse(dueBefore);
    const rows = await listCases(db, {
      ...filter,
      agencyId: user.agencyId,
      dueBeforeMs,
      after: cursor ? { dueKey: cursor[0], caseId: cursor[1] } : undefined,
      limit: query.limit + 1,
    });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    const now = Date.now();
    const items = page.map((row): CaseListItem => {
      const blockers = row.state ? explain(row.state, agencyToday(row.state, now)).blockers : [];
      return {
        caseId: row.case_id,
        clientId: row.client_id,
        counselorId: row.counselor_id,
        transferId: row.transfer_id,
        kind: row.kind,
        reason: row.reason,
        status: row.status,
        step: row.step,
        dueAt: row.due_at ? row.due_at.toISOString() : null,
        noticeDue: row.notice_due,
        lastDay: row.last_day,
        escalated: row.escalated,
        blockers,
      };
    });
    await auditList(req, user, 'case.listed', {
      filter: { ...filter, ...(dueBefore ? { dueBefore } : {}), cursor: req.query.cursor ?? null },
      count: items.length,
    });
    res.json({
      items,
      next: rows.length > query.limit && last ? encodeCursor([last.due_key, last.case_id]) : null,
    });
  });

  /** The agency's open transfers and the recently ended ones, last day soonest first, with case counts. */
  router.get('/v1/transfers', async (req, res) => {
    const user = userOf(req);
    requireRoles(user, PERMISSIONS.readTransfer, 'listing transfers');
    const query = parse(transferListQuery, req.query, 'query');
    const rows = await listTransfers(db, {
      agencyId: user.agencyId,
      endedSince: new Date(Date.now() - query.endedWithinDays * DAY_MS),
      after: query.cursor ? { lastDay: query.cursor[0], transferId: query.cursor[1] } : undefined,
      limit: query.limit + 1,
    });
    const page = rows.slice(0, query.limit);
    const counts = await transferCaseCounts(
      db,
      user.agencyId,
      page.map((t) => t.transfer_id),
    );
    const items = page.map((t) => ({
      transferId: t.transfer_id,
      counselorId: t.counselor_id,
      lastDay: t.last_day,
      status: t.status,
      reason: t.reason,
      expected: t.expected,
      started: t.opened,
      casesByStatus: counts.get(t.transfer_id) ?? {},
      createdAt: t.created_at.toISOString(),
      updatedAt: new Date(t.updated_at).toISOString(),
    }));
    await auditList(req, user, 'transfer.listed', {
      filter: { endedWithinDays: query.endedWithinDays, cursor: req.query.cursor ?? null },
      count: items.length,
    });
    const last = page.at(-1);
    res.json({
      items,
      next: rows.length > query.limit && last ? encodeCursor([last.last_day, last.transfer_id]) : null,
    });
  });

  return router;
}
