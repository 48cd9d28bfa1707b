import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { type Response, Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { lastAnchor } from '../db/anchors';
import {
  type AuditFilter,
  type ExportedEvent,
  type VerifyReport,
  accountingOfDisclosures,
  appendAuditEvent,
  chainHead,
  csvExportCopy,
  eventBatches,
  integrateAuditChains,
  summarize,
  verifyChain,
} from '../db/audit';
import type { CopyOut } from '../db/database';
import type { Database } from '../db/schema';
import { PERMISSIONS } from '../domain/roles';
import { requireRoles, userOf } from './auth';
import { actorOf, parse } from './http';
import { id } from './schemas';

const AUDITORS = PERMISSIONS.readAudit;

export const auditQuery = z.strictObject({
  caseId: z.uuid().optional(),
  clientId: id.optional(),
  actorId: id.optional(),
  action: z
    .string()
    .regex(/^[a-z_.]{1,100}$/, 'an action such as case.opened')
    .optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  format: z.enum(['ndjson', 'csv']).default('ndjson'),
});

export const verifyQuery = z.strictObject({
  full: z
    .enum(['true', 'false'])
    .default('false')
    .describe("true: the agency's whole chain from its first event, not from the last checkpoint"),
});

export const clientParams = z.strictObject({ clientId: id });
export const disclosuresQuery = z.strictObject({ since: z.iso.date().optional() });

function ndjson(rows: ExportedEvent[]): string {
  return rows.map((row) => `${JSON.stringify(row)}\n`).join('');
}

/** Writes with back-pressure; a client that went away ends the export instead of hanging it. */
async function write(res: Response, chunk: string): Promise<void> {
  if (res.destroyed) throw new Error('the client closed the export');
  if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
}

/**
 * What verify tells one agency: whether its own chain is whole from where it was last found whole (or from its
 * first event), where it broke, and whether the head last written out of the database is still on it. Its chain
 * holds its events only, so its head is its own to see.
 */
function agencyReport(report: VerifyReport) {
  const chain = report.chains[0];
  return {
    ok: report.ok,
    full: report.full,
    from: chain?.from ?? '0',
    checked: report.checked,
    headPosition: chain?.headPosition ?? null,
    headHash: chain?.headPosition ? chain.headHash : null,
    firstBroken: report.firstBroken
      ? { position: report.firstBroken.position, seq: report.firstBroken.seq, reason: report.firstBroken.reason }
      : null,
    pending: report.pending.events,
    unchained: report.unchained,
    anchor: report.anchor,
  };
}

/** The audit trail for compliance: export (streamed, with a manifest), verification, accounting of disclosures. */
export function auditRoutes({
  db,
  copyOut,
  anchorFile,
}: {
  db: Kysely<Database>;
  copyOut: CopyOut;
  anchorFile: string;
}): Router {
  const router = Router();

  /**
   * Events by case, client, actor, action and period: NDJSON streamed batch by batch, or CSV written by PostgreSQL
   * (COPY) and passed on as it comes.
   */
  router.get('/v1/audit', async (req, res) => {
    const actor = actorOf(req);
    requireRoles(userOf(req), AUDITORS, 'reading the audit trail');
    const query = parse(auditQuery, req.query, 'query');
    const agencyId = userOf(req).agencyId;
    // What is written by now is in the export: chain it first (the worker does so every second anyway).
    await integrateAuditChains(db, { chains: [agencyId] });
    const head = await chainHead(db, agencyId);
    const filter: AuditFilter = {
      caseId: query.caseId,
      clientId: query.clientId,
      actorId: query.actorId,
      action: query.action,
      from: query.from ? new Date(query.from) : undefined,
      to: query.to ? new Date(query.to) : undefined,
      agencyId,
      upToPosition: head?.position ?? '0',
    };
    const summary = await summarize(db, filter);
    const { format, ...filterQuery } = query;
    const manifest = {
      filter: filterQuery,
      count: Number(summary.count),
      firstPosition: summary.first ?? null,
      lastPosition: summary.last ?? null,
      headPosition: head?.position ?? null,
      headHash: head?.hash ?? null,
      exportedBy: actor,
      exportedAt: new Date().toISOString(),
      format,
    };
    // The export is itself an event, written before the first byte leaves.
    await appendAuditEvent(db, {
      eventKey: `audit:export:${randomUUID()}`,
      agencyId: userOf(req).agencyId,
      actor,
      action: 'audit.exported',
      caseId: query.caseId ?? null,
      clientId: query.clientId ?? null,
      outcome: 'done',
      requestId: req.id,
      sourceAddress: req.ip ?? null,
      after: manifest,
    });
    res.set('X-Audit-Manifest', JSON.stringify(manifest)); // ids only: the filter schema keeps it ASCII
    // The file name first: attachment() sets a type from its extension, which knows no .ndjson.
    res.attachment(`audit-${manifest.exportedAt.slice(0, 10)}.${format}`);
    res.type(format === 'csv' ? 'text/csv' : 'application/x-ndjson');
    try {
      if (format === 'csv') {
        await pipeline(await copyOut(csvExportCopy(db, filter)), res);
        return;
      }
      await write(res, `${JSON.stringify({ manifest })}\n`);
      for await (const rows of eventBatches(db, filter)) await write(res, ndjson(rows));
      res.end();
    } catch (error) {
      // Headers are gone: cut the connection so a truncated export can never pass for a whole one.
      res.destroy(error as Error);
    }
  });

  /**
   * Recomputes the agency's chain from its last checkpoint (or, with full=true, from its first event) and compares
   * it with the head last written out of the database.
   */
  router.get('/v1/audit/verify', async (req, res) => {
    requireRoles(userOf(req), AUDITORS, 'verifying the audit trail');
    const { full } = parse(verifyQuery, req.query, 'query');
    const agencyId = userOf(req).agencyId;
    await integrateAuditChains(db, { chains: [agencyId] });
    const report = await verifyChain(db, lastAnchor(anchorFile), { chains: [agencyId], full: full === 'true' });
    res.status(200).json(agencyReport(report));
  });

  /** What was disclosed about a client, to whom, under which consent (42 CFR Part 2 §2.25). */
  router.get('/v1/clients/:clientId/disclosures', async (req, res) => {
    const actor = actorOf(req);
    requireRoles(userOf(req), AUDITORS, 'the accounting of disclosures');
    const { clientId } = parse(clientParams, req.params, 'path');
    const { since } = parse(disclosuresQuery, req.query, 'query');
    const from = since ?? new Date(Date.now() - 3 * 365 * 86_400_000).toISOString().slice(0, 10);
    const rows = await accountingOfDisclosures(db, userOf(req).agencyId, clientId, new Date(`${from}T00:00:00Z`));
    await appendAuditEvent(db, {
      eventKey: `disclosures:viewed:${randomUUID()}`,
      agencyId: userOf(req).agencyId,
      actor,
      action: 'disclosures.viewed',
      clientId,
      outcome: 'done',
      requestId: req.id,
      sourceAddress: req.ip ?? null,
    });
    res.json({
      clientId,
      since: from,
      disclosures: rows.map((r) => ({
        disclosedAt: r.disclosed_at.toISOString(),
        caseId: r.case_id,
        recipient: r.recipient_provider_id,
        disclosed: r.disclosed,
        substanceUseRecords: r.substance_use_records,
        redisclosureNotice: r.redisclosure_notice,
        consent: {
          consentId: r.consent_id,
          purpose: r.purpose,
          signedOn: r.signed_on,
          expiresOn: r.expires_on,
          revokedAt: r.revoked_at?.toISOString() ?? null,
        },
      })),
    });
  });

  return router;
}
