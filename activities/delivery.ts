import { createHash } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { SendMailOptions } from 'nodemailer';
import { appendAuditEvent } from '../db/audit';
import { clientFacts } from '../db/clients';
import {
  DELIVERY_DEFAULTS,
  type OutboxRow,
  type StaffEmailPayload,
  claimDueMessages,
  enqueueDailyDigests,
  newClaimId,
  settleMessage,
} from '../db/outbox';
import { agencyPolicy, findAgencyPolicy, withDefaults } from '../db/policies';
import type { Database, LetterDelivery } from '../db/schema';
import type { Consent } from '../domain/process';
import { REDISCLOSURE_NOTICE, isBlocker, releaseFor } from '../domain/rules/consent-before-disclosure';
import { letterRoute } from '../domain/rules/safe-contact';
import { DEFAULT_TIME_ZONE, localDate } from '../domain/time';
import type { LetterContent } from './letter';

/** What the sender needs of an SMTP client (nodemailer's transport, or a test double around one). */
export interface Mailer {
  sendMail(message: SendMailOptions): Promise<unknown>;
}

export interface DeliveryOptions {
  /** null: no SMTP server is configured, and every email fails (and in the end becomes a task for staff). */
  mailer: Mailer | null;
  /** The From address of everything the service sends. */
  from: string;
  /** Where staff open a case (`<publicUrl>/v1/cases/<id>`) and their queue. */
  publicUrl: string;
  /** Attempts before a message is dead-lettered. */
  maxAttempts?: number;
  /** How long a claimed message may be in flight before another sender presumes this one dead. */
  leaseMs?: number;
  batchSize?: number;
  /** The first retry's delay; each further one doubles it, up to an hour. */
  backoffMs?: number;
  /** The agency's hour from which the day's digest goes out; null: no digests. */
  digestHour?: number | null;
  /** Only these agencies' messages (a sender dedicated to some agencies); all when absent. */
  agencyIds?: readonly string[];
}

export interface DeliveryOrigin {
  workflowId: string | null;
  activityId: string | null;
}

export interface BatchResult {
  claimed: number;
  sent: number;
  failed: number;
  dead: number;
  /** Whether the batch was full: there may be more due now. */
  more: boolean;
}

/** A failure no retry can fix (no address on record, a refused consent): the message is dead-lettered at once. */
class Undeliverable extends Error {}

/** What one message became: it left, or joined the print batch, or was withheld at send time. */
type Outcome =
  | { kind: 'sent'; messageId: string | null; after: Record<string, unknown> }
  | { kind: 'batched'; batchDate: string; after: Record<string, unknown> }
  | { kind: 'withheld'; reason: string };

/** The audit trail's name for each kind of message. */
const SUBJECTS: Record<string, string> = {
  closure_letter: 'letter',
  referral: 'referral_notice',
  staff_email: 'staff_email',
};

const EMAIL_ADDRESS = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

/**
 * The Message-ID a message keeps on every attempt, derived from its outbox key, so a receiver that sees it
 * twice (the sender died between the server's accept and marking it delivered) can drop the second copy.
 */
export function messageIdFor(messageKey: string, from: string): string {
  const domain = from.split('@').pop()?.replace(/[>\s]/g, '') || 'handoff.invalid';
  return `<${createHash('sha256').update(messageKey).digest('hex').slice(0, 40)}@${domain}>`;
}

function shortError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, ' ').slice(0, 300);
}

/**
 * The sender: claims due outbox rows, delivers each (SMTP, or the day's print batch), and marks it in the
 * same transaction as its audit event. A failure waits (backoff) and is tried again; after `maxAttempts`, or
 * at once when no retry can help, the message is dead and a task asks staff to deliver it another way.
 */
export function createSender(db: Kysely<Database>, options: DeliveryOptions) {
  const maxAttempts = options.maxAttempts ?? DELIVERY_DEFAULTS.maxAttempts;
  const leaseMs = options.leaseMs ?? DELIVERY_DEFAULTS.leaseMs;
  const batchSize = options.batchSize ?? 10;
  const backoffMs = options.backoffMs ?? DELIVERY_DEFAULTS.backoffMs;
  const digestHour = options.digestHour === undefined ? 7 : options.digestHour;
  const publicUrl = options.publicUrl.replace(/\/$/, '');

  async function agencyOf(row: OutboxRow): Promise<string> {
    if (row.agency_id) return row.agency_id;
    const found = row.case_id
      ? await db.selectFrom('cases').select('agency_id').where('case_id', '=', row.case_id).executeTakeFirst()
      : undefined;
    if (!found) throw new Undeliverable(`message ${row.message_key} names no agency`);
    return found.agency_id;
  }

  async function send(message: SendMailOptions): Promise<void> {
    if (!options.mailer) throw new Error('no SMTP server is configured (SMTP_URL)');
    await options.mailer.sendMail({ from: options.from, ...message });
  }

  async function letterMessage(row: OutboxRow, now: Date): Promise<Outcome> {
    const { letterId, content } = row.payload as { letterId: string; content?: LetterContent };
    const agencyId = await agencyOf(row);
    const letter = await db
      .selectFrom('letters')
      .innerJoin('cases', 'cases.case_id', 'letters.case_id')
      .select(['letters.pdf', 'letters.pdf_sha256', 'cases.client_id', 'cases.agency_id'])
      .where('letters.letter_id', '=', letterId)
      .executeTakeFirst();
    if (!letter) throw new Undeliverable(`letter ${letterId} is not on record`);
    // Safe contact, again at the moment it leaves: the record may have changed since the letter was queued.
    const facts = await clientFacts(db, agencyId, letter.client_id);
    if (!facts) throw new Undeliverable(`client ${letter.client_id} is not on record`);
    const route = letterRoute(facts);
    if (route.channel !== row.channel) {
      return {
        kind: 'withheld',
        reason:
          route.heldBecause ??
          `safe_contact: the client's record now routes letters by ${route.channel}, not ${row.channel}`,
      };
    }
    const agency = await findAgencyPolicy(db, agencyId);
    const policy = withDefaults(agency?.policy);
    if (row.channel === 'mail') {
      if (!content) throw new Undeliverable(`letter ${letterId} has no content for the print batch`);
      const batchDate = localDate(now.getTime(), policy.timeZone ?? DEFAULT_TIME_ZONE);
      return { kind: 'batched', batchDate, after: { letterId, batchDate, pdfSha256: letter.pdf_sha256 } };
    }
    const agencyName = agency?.agency_name ?? agencyId;
    const messageId = messageIdFor(row.message_key, options.from);
    await send({
      to: facts.contact.email!,
      subject: `A letter from ${agencyName}`,
      text: [
        `Please find attached a letter from ${agencyName}.`,
        agency ? `You can reach us at ${agency.agency_phone}.` : '',
        'If you are in crisis, call or text 988, any time.',
      ]
        .filter(Boolean)
        .join('\n\n'),
      messageId,
      attachments: [{ filename: 'letter.pdf', content: letter.pdf, contentType: 'application/pdf' }],
    });
    return { kind: 'sent', messageId, after: { letterId, channel: 'email', pdfSha256: letter.pdf_sha256 } };
  }

  async function referralMessage(row: OutboxRow, now: Date): Promise<Outcome> {
    const { referralId, redisclosureNotice } = row.payload as { referralId: string; redisclosureNotice: string | null };
    if (row.channel === 'internal') {
      // Inside the agency: the receiving clinician works in this service; nothing leaves the building.
      return { kind: 'sent', messageId: null, after: { referralId, channel: 'internal' } };
    }
    const agencyId = await agencyOf(row);
    const referral = await db
      .selectFrom('referrals')
      .innerJoin('cases', 'cases.case_id', 'referrals.case_id')
      .select([
        'referrals.provider_id',
        'referrals.provider_name',
        'referrals.provider_contact',
        'referrals.case_id',
        'cases.client_id',
      ])
      .where('referrals.referral_id', '=', referralId)
      .executeTakeFirst();
    if (!referral) throw new Undeliverable(`referral ${referralId} is not on record`);
    const facts = await clientFacts(db, agencyId, referral.client_id);
    const policy = await agencyPolicy(db, agencyId);
    const consents = await db.selectFrom('consents').selectAll().where('case_id', '=', referral.case_id).execute();
    const substanceUseRecords = facts?.hasSubstanceUseRecords ?? redisclosureNotice !== null;
    // Consent before disclosure, re-checked as the notice leaves: a release revoked since it was queued stops it.
    const release = releaseFor(
      consents.map((c): Consent => ({
        consentId: c.consent_id,
        recipientProviderId: c.recipient_provider_id,
        disclosed: c.disclosed,
        purpose: c.purpose,
        expiresOn: c.expires_on,
        coversSubstanceUseRecords: c.covers_sud_records,
        revocable: true,
        signedOn: c.signed_on,
        revokedAt: c.revoked_at ? c.revoked_at.toISOString() : null,
      })),
      {
        providerId: referral.provider_id,
        providerName: referral.provider_name,
        today: localDate(now.getTime(), policy.timeZone ?? DEFAULT_TIME_ZONE),
        substanceUseRecords,
      },
    );
    if (isBlocker(release)) return { kind: 'withheld', reason: `${release.rule}: ${release.detail}` };
    const provider = await db
      .selectFrom('providers')
      .select('contact')
      .where('provider_id', '=', referral.provider_id)
      .executeTakeFirst();
    const to = [referral.provider_contact, provider?.contact].find((c) => c && EMAIL_ADDRESS.test(c.trim()));
    if (!to) throw new Undeliverable(`no email address on record for ${referral.provider_name}`);
    const agency = await findAgencyPolicy(db, agencyId);
    const agencyName = agency?.agency_name ?? agencyId;
    const messageId = messageIdFor(row.message_key, options.from);
    // Only what the release allows: who, for what purpose, what may be shared; Part 2's notice when it applies.
    await send({
      to: to.trim(),
      subject: `Referral from ${agencyName}`,
      text: [
        `${agencyName} refers a client to ${referral.provider_name} for ${release.purpose}.`,
        `Client: ${facts?.name ?? referral.client_id}`,
        `Under the client's release of information signed ${release.signedOn} (valid until ${release.expiresOn}), we may share: ${release.disclosed}.`,
        `Please tell us whether you can accept this referral${agency ? `: ${agency.agency_phone}` : ''}.`,
        ...(substanceUseRecords ? [REDISCLOSURE_NOTICE] : []),
      ].join('\n\n'),
      messageId,
    });
    return {
      kind: 'sent',
      messageId,
      after: {
        referralId,
        recipient: referral.provider_id,
        consentId: release.consentId,
        disclosed: release.disclosed,
      },
    };
  }

  async function staffMessage(row: OutboxRow): Promise<Outcome> {
    const payload = row.payload as StaffEmailPayload;
    const agencyId = await agencyOf(row);
    const user = await db
      .selectFrom('users')
      .select(['email', 'active'])
      .where('agency_id', '=', agencyId)
      .where('user_id', '=', payload.to)
      .executeTakeFirst();
    if (!user?.active || !user.email) throw new Undeliverable(`no email address on record for user ${payload.to}`);
    const link = payload.caseLink
      ? payload.caseLink.startsWith('/')
        ? `${publicUrl}${payload.caseLink}`
        : payload.caseLink
      : null;
    const messageId = messageIdFor(row.message_key, options.from);
    await send({
      to: user.email,
      subject: payload.subject,
      text: link ? `${payload.text}\n\n${link}` : payload.text,
      messageId,
    });
    return { kind: 'sent', messageId, after: { to: payload.to } };
  }

  async function deliver(row: OutboxRow, now: Date): Promise<Outcome> {
    if (row.kind === 'closure_letter') return letterMessage(row, now);
    if (row.kind === 'referral') return referralMessage(row, now);
    if (row.kind === 'staff_email') return staffMessage(row);
    throw new Undeliverable(`no channel delivers messages of kind ${row.kind}`);
  }

  async function setLetterDelivery(trx: Transaction<Database>, row: OutboxRow, delivery: LetterDelivery) {
    if (row.kind !== 'closure_letter') return;
    const { letterId } = row.payload as { letterId: string };
    await trx.updateTable('letters').set({ delivery }).where('letter_id', '=', letterId).execute();
  }

  async function clientOf(row: OutboxRow): Promise<string | null> {
    if (!row.case_id) return null;
    const found = await db
      .selectFrom('cases')
      .select('client_id')
      .where('case_id', '=', row.case_id)
      .executeTakeFirst();
    return found?.client_id ?? null;
  }

  /** The dead letter becomes a task for the agency's staff, naming what failed and never what the case is about. */
  async function deadLetterTask(trx: Transaction<Database>, row: OutboxRow, why: string) {
    if (!row.case_id || !row.agency_id) return;
    const what =
      row.kind === 'closure_letter'
        ? `the closure letter (${row.channel})`
        : row.kind === 'referral'
          ? 'the referral notice to the receiving provider'
          : `an email to staff member ${row.recipient}`;
    await trx
      .insertInto('tasks')
      .values({
        task_key: `${row.message_key}:delivery.failed`,
        agency_id: row.agency_id,
        case_id: row.case_id,
        kind: 'delivery.failed',
        assignee_role: 'staff',
        assignee_id: null,
        detail: `${what} could not be delivered (${why}); deliver it another way and record it`,
      })
      .onConflict((oc) => oc.column('task_key').doNothing())
      .execute();
  }

  async function settle(
    row: OutboxRow,
    result: Outcome | { kind: 'failed'; error: unknown },
    now: Date,
    origin: DeliveryOrigin,
  ) {
    const subject = SUBJECTS[row.kind] ?? row.kind;
    const clientId = await clientOf(row);
    const audit = (
      trx: Transaction<Database>,
      suffix: string,
      action: string,
      fields: Partial<Parameters<typeof appendAuditEvent>[1]>,
    ) =>
      appendAuditEvent(trx, {
        eventKey: `${row.message_key}:${suffix}`,
        agencyId: row.agency_id,
        actor: { id: 'system', role: 'system' },
        action,
        caseId: row.case_id,
        clientId,
        outcome: 'done',
        workflowId: origin.workflowId,
        activityId: origin.activityId,
        ...fields,
      });
    return db.transaction().execute(async (trx) => {
      if (result.kind === 'sent') {
        if (!(await settleMessage(trx, row, { status: 'delivered', deliveredAt: now, lastError: null }))) return 'lost';
        await setLetterDelivery(trx, row, 'sent');
        await audit(trx, 'sent', `${subject}.sent`, {
          after: {
            messageKey: row.message_key,
            channel: row.channel,
            messageId: result.messageId,
            attempts: row.attempts,
            ...result.after,
          },
        });
        return 'sent';
      }
      if (result.kind === 'batched') {
        if (!(await settleMessage(trx, row, { status: 'batched', lastError: null }))) return 'lost';
        const { letterId, content } = row.payload as { letterId: string; content: LetterContent };
        await trx
          .insertInto('mail_batch_items')
          .values({
            message_key: row.message_key,
            agency_id: await agencyOf(row),
            batch_date: result.batchDate,
            case_id: row.case_id!,
            letter_id: letterId,
            content: JSON.stringify(content),
          })
          .onConflict((oc) => oc.column('message_key').doNothing())
          .execute();
        await setLetterDelivery(trx, row, 'batched_for_mail');
        await audit(trx, 'batched', `${subject}.batched_for_mail`, {
          after: { messageKey: row.message_key, ...result.after },
        });
        return 'sent';
      }
      if (result.kind === 'withheld') {
        if (!(await settleMessage(trx, row, { status: 'withheld', lastError: result.reason }))) return 'lost';
        await setLetterDelivery(trx, row, 'withheld');
        await deadLetterTask(trx, row, `withheld at send time: ${result.reason}`);
        await audit(trx, 'withheld', `${subject}.withheld`, {
          outcome: 'refused',
          outcomeReason: result.reason,
          after: { messageKey: row.message_key, channel: row.channel },
        });
        return 'dead';
      }
      const error = shortError(result.error);
      const dead = result.error instanceof Undeliverable || row.attempts >= maxAttempts;
      if (dead) {
        if (!(await settleMessage(trx, row, { status: 'dead', lastError: error }))) return 'lost';
        await setLetterDelivery(trx, row, 'failed');
        await deadLetterTask(trx, row, `${row.attempts} attempt${row.attempts === 1 ? '' : 's'}: ${error}`);
        await audit(trx, 'dead', `${subject}.dead_lettered`, {
          outcome: 'failed',
          outcomeReason: error,
          after: { messageKey: row.message_key, channel: row.channel, attempts: row.attempts },
        });
        return 'dead';
      }
      const delay = Math.min(3_600_000, backoffMs * 2 ** (row.attempts - 1));
      const nextAttemptAt = new Date(now.getTime() + delay);
      if (!(await settleMessage(trx, row, { status: 'pending', nextAttemptAt, lastError: error }))) return 'lost';
      await audit(trx, `attempt:${row.attempts}:failed`, `${subject}.send_failed`, {
        outcome: 'failed',
        outcomeReason: error,
        after: { messageKey: row.message_key, channel: row.channel, attempt: row.attempts, nextAttemptAt },
      });
      return 'failed';
    });
  }

  let lastDigestCheck = 0;

  /** Delivers what is due now, one claimed batch; answers how it went and whether more may be waiting. */
  async function deliverBatch(
    origin: DeliveryOrigin = { workflowId: null, activityId: null },
    now: () => Date = () => new Date(),
  ): Promise<BatchResult> {
    if (digestHour !== null && now().getTime() - lastDigestCheck >= 60_000) {
      lastDigestCheck = now().getTime();
      await enqueueDailyDigests(db, {
        now: now(),
        hour: digestHour,
        queueLink: `${publicUrl}/v1/tasks`,
        agencyIds: options.agencyIds,
      });
    }
    const rows = await claimDueMessages(db, {
      now: now(),
      limit: batchSize,
      leaseMs,
      claimId: newClaimId(),
      agencyIds: options.agencyIds,
    });
    const result: BatchResult = { claimed: rows.length, sent: 0, failed: 0, dead: 0, more: rows.length === batchSize };
    for (const row of rows) {
      // A slow batch must not send a message whose lease ran out: another sender may have taken it over.
      // Left as it is, it is claimed again (this attempt counted) once the lease has passed.
      if (now().getTime() >= row.next_attempt_at.getTime()) continue;
      let outcome: Outcome | { kind: 'failed'; error: unknown };
      try {
        outcome = await deliver(row, now());
      } catch (error) {
        outcome = { kind: 'failed', error };
      }
      const settled = await settle(row, outcome, now(), origin);
      if (settled === 'sent') result.sent++;
      else if (settled === 'failed') result.failed++;
      else if (settled === 'dead') result.dead++;
    }
    return result;
  }

  return { deliverBatch };
}

/** Without an SMTP server: emails fail, retry and end as tasks for staff; nothing is lost. */
export const NO_DELIVERY: DeliveryOptions = {
  mailer: null,
  from: 'handoff@localhost',
  publicUrl: 'http://127.0.0.1:3000',
  digestHour: null,
};

/** The outbox sender as an activity, for the sender workflow. */
export function createDeliveryActivities(db: Kysely<Database>, options: DeliveryOptions, origin: () => DeliveryOrigin) {
  const sender = createSender(db, options);
  return {
    /** Delivers one batch of due outbox messages (the outbox sender workflow calls it in a loop). */
    async deliverOutboxBatch(): Promise<BatchResult> {
      return sender.deliverBatch(origin());
    },
  };
}
