import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { renderLettersPdf } from '../activities/letter';
import { appendAuditEvent } from '../db/audit';
import { mailBatch, markBatchMailed } from '../db/outbox';
import type { Database } from '../db/schema';
import { PERMISSIONS } from '../domain/roles';
import { requireRoles, userOf } from './auth';
import { actorOf, parse } from './http';

export const mailBatchParams = z.strictObject({ batchDate: z.iso.date() });

/**
 * The front desk's print-and-mail batch: one PDF a day per agency with every closure letter to mail, and the
 * record that it was mailed (only then is each letter `letter.sent`). Downloading it is an audited read.
 */
export function mailRoutes({ db }: { db: Kysely<Database> }): Router {
  const router = Router();

  router.get('/v1/mail-batches/:batchDate', async (req, res) => {
    const user = userOf(req);
    requireRoles(user, PERMISSIONS.handleMail, 'handling the print-and-mail batch');
    const { batchDate } = parse(mailBatchParams, req.params, 'path');
    const items = await mailBatch(db, user.agencyId, batchDate);
    res.json({
      batchDate,
      letters: items.map((i) => ({
        caseId: i.case_id,
        letterId: i.letter_id,
        addedAt: i.added_at,
        mailedAt: i.mailed_at,
      })),
    });
  });

  /** The day's letters in one PDF, each from a new page, with the client's address where a window shows it. */
  router.get('/v1/mail-batches/:batchDate/letters.pdf', async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, PERMISSIONS.handleMail, 'handling the print-and-mail batch');
    const { batchDate } = parse(mailBatchParams, req.params, 'path');
    const items = await mailBatch(db, user.agencyId, batchDate);
    const pdf = await renderLettersPdf(
      items.map((i) => i.content as Parameters<typeof renderLettersPdf>[0][number]),
      `Letters to mail, ${batchDate}`,
      batchDate,
    );
    await appendAuditEvent(db, {
      eventKey: `mail_batch:${user.agencyId}:${batchDate}:downloaded:${randomUUID()}`,
      agencyId: user.agencyId,
      actor,
      action: 'mail_batch.downloaded',
      outcome: 'done',
      requestId: req.id,
      sourceAddress: req.ip ?? null,
      after: { batchDate, caseIds: items.map((i) => i.case_id) },
    });
    res.type('application/pdf').send(pdf);
  });

  /** The batch went into the post: every letter in it not yet marked is sent now. */
  router.post('/v1/mail-batches/:batchDate/mailed', async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, PERMISSIONS.handleMail, 'handling the print-and-mail batch');
    const { batchDate } = parse(mailBatchParams, req.params, 'path');
    const marked = await db
      .transaction()
      .execute((trx) =>
        markBatchMailed(trx, { agencyId: user.agencyId, batchDate, actor, requestId: req.id, now: new Date() }),
      );
    res.json({ batchDate, mailed: marked });
  });

  return router;
}
