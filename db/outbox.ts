import { randomUUID } from 'node:crypto';
import { type Kysely, type Selectable, type Transaction, sql } from 'kysely';
import type { Role } from '../domain/case';
import { RISK_FLAGS } from '../domain/process';
import { DEFAULT_TIME_ZONE, localDate, startOfLocalDay } from '../domain/time';
import { appendAuditEvent } from './audit';
import type { Database, OutboxTable } from './schema';

export type OutboxRow = Selectable<OutboxTable>;

/** The sender's retry policy unless told otherwise (activities/delivery.ts). */
export const DELIVERY_DEFAULTS = { maxAttempts: 6, leaseMs: 5 * 60_000, backoffMs: 30_000 } as const;

/**
 * How long a message may stay undelivered while the sender still works on it: every attempt's lease plus every
 * backoff between attempts (doubling, at most an hour). Older than that and neither delivered nor dead-lettered,
 * something is wrong (no sender runs, or a row escaped it).
 */
export function outboxRetryWindowMs(policy: { maxAttempts: number; leaseMs: number; backoffMs: number }): number {
  let window = policy.maxAttempts * policy.leaseMs;
  for (let attempt = 1; attempt < policy.maxAttempts; attempt++) {
    window += Math.min(3_600_000, policy.backoffMs * 2 ** (attempt - 1));
  }
  return window;
}

/** What any `staff_email` row carries; the sender delivers it as it is. */
export interface StaffEmailPayload {
  /** The user id; the address is the user's `email` when the message is sent. */
  to: string;
  subject: string;
  text: string;
  caseLink: string | null;
}

/** Words that say something about a client's health; a staff email names none of them. */
const HEALTH_WORDS = [
  'suicid',
  'self-harm',
  'relapse',
  'substance',
  'overdose',
  'domestic',
  'abuse',
  'diagnos',
  'part 2',
];

export class ClientDetailInStaffEmail extends Error {
  constructor(what: string) {
    super(`a staff email may not carry the client's ${what}; send only what is needed and a link to the case`);
    this.name = 'ClientDetailInStaffEmail';
  }
}

/**
 * Refuses a staff email that names the client, their risk flags or their contact details: an email leaves the
 * agency's systems, so it carries what the recipient needs to act and a link, never health information.
 */
export async function checkNoClientDetail(db: Kysely<Database>, caseId: string | null, parts: string[]): Promise<void> {
  const words = parts.join('\n').toLowerCase();
  const flagWords = [...RISK_FLAGS, ...RISK_FLAGS.map((f) => f.replace('_', ' ')), ...HEALTH_WORDS];
  if (flagWords.some((w) => words.includes(w))) throw new ClientDetailInStaffEmail('risk flags or health information');
  if (!caseId) return;
  const row = await db
    .selectFrom('cases')
    .leftJoin('clients', (j) =>
      j.onRef('clients.client_id', '=', 'cases.client_id').onRef('clients.agency_id', '=', 'cases.agency_id'),
    )
    .select(['cases.client_name', 'clients.name', 'clients.contact'])
    .where('cases.case_id', '=', caseId)
    .executeTakeFirst();
  if (!row) return;
  for (const name of [row.client_name, row.name]) {
    if (name && name.trim().length > 2 && words.includes(name.trim().toLowerCase()))
      throw new ClientDetailInStaffEmail('name');
  }
  for (const contact of [row.contact?.email, row.contact?.postalAddress]) {
    if (contact && words.includes(contact.trim().toLowerCase())) throw new ClientDetailInStaffEmail('contact details');
  }
}

/**
 * Queues an email to a member of staff (a task assigned or escalated to them, their daily digest) in the
 * caller's transaction, so it goes out if and only if the change that caused it commits. Once per key.
 */
export async function enqueueStaffEmail(
  trx: Transaction<Database>,
  input: {
    messageKey: string;
    agencyId: string;
    caseId: string | null;
    toUserId: string;
    subject: string;
    text: string;
    caseLink: string | null;
  },
): Promise<boolean> {
  await checkNoClientDetail(trx, input.caseId, [input.subject, input.text]);
  const payload: StaffEmailPayload = {
    to: input.toUserId,
    subject: input.subject,
    text: input.text,
    caseLink: input.caseLink,
  };
  const inserted = await trx
    .insertInto('outbox')
    .values({
      message_key: input.messageKey,
      agency_id: input.agencyId,
      case_id: input.caseId,
      kind: 'staff_email',
      channel: 'email',
      recipient: input.toUserId,
      payload: JSON.stringify(payload),
    })
    .onConflict((oc) => oc.column('message_key').doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
  await appendAuditEvent(trx, {
    eventKey: `${input.messageKey}:queued`,
    agencyId: input.agencyId,
    actor: { id: 'system', role: 'system' },
    action: 'staff_email.queued',
    caseId: input.caseId,
    clientId: null,
    outcome: 'done',
    after: { messageKey: input.messageKey, to: input.toUserId },
  });
  return true;
}

/**
 * Claims up to `limit` due messages for one sender: each is `sending` under `claimId` until `leaseUntil`.
 * A sender that dies leaves its rows to be claimed again once the lease runs out. SKIP LOCKED lets
 * several senders drain the table side by side without waiting on each other.
 */
export async function claimDueMessages(
  db: Kysely<Database>,
  options: { now: Date; limit: number; leaseMs: number; claimId: string; agencyIds?: readonly string[] },
): Promise<OutboxRow[]> {
  const leaseUntil = new Date(options.now.getTime() + options.leaseMs);
  return db
    .updateTable('outbox')
    .set({
      status: 'sending',
      claim_id: options.claimId,
      attempts: sql`attempts + 1`,
      next_attempt_at: leaseUntil,
    })
    .where('message_key', 'in', (qb) =>
      qb
        .selectFrom('outbox')
        .select('message_key')
        .where('status', 'in', ['pending', 'sending'])
        .where('next_attempt_at', '<=', options.now)
        .$if(options.agencyIds !== undefined, (q) => q.where('agency_id', 'in', [...options.agencyIds!, '']))
        .orderBy('next_attempt_at')
        .limit(options.limit)
        .forUpdate()
        .skipLocked(),
    )
    .returningAll()
    .execute();
}

/** Ends this sender's claim on a message; false when the claim was lost (another sender took the row over). */
export async function settleMessage(
  trx: Transaction<Database>,
  row: OutboxRow,
  update: {
    status: OutboxRow['status'];
    deliveredAt?: Date | null;
    nextAttemptAt?: Date;
    lastError?: string | null;
  },
): Promise<boolean> {
  const result = await trx
    .updateTable('outbox')
    .set({
      status: update.status,
      claim_id: null,
      ...(update.deliveredAt !== undefined ? { delivered_at: update.deliveredAt } : {}),
      ...(update.nextAttemptAt ? { next_attempt_at: update.nextAttemptAt } : {}),
      ...(update.lastError !== undefined ? { last_error: update.lastError } : {}),
    })
    .where('message_key', '=', row.message_key)
    .where('status', '=', 'sending')
    .where('claim_id', '=', row.claim_id)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** The letters of an agency's print-and-mail batch of one day, in the order they joined it. */
export async function mailBatch(db: Kysely<Database>, agencyId: string, batchDate: string) {
  return db
    .selectFrom('mail_batch_items')
    .selectAll()
    .where('agency_id', '=', agencyId)
    .where('batch_date', '=', batchDate)
    .orderBy('added_at')
    .orderBy('message_key')
    .execute();
}

/**
 * Daily digests: once per user per agency day, from `hour` o'clock in the agency's time zone, an email to each
 * active user with an address and open tasks, saying how many and where the queue is (never what they are).
 */
export async function enqueueDailyDigests(
  db: Kysely<Database>,
  options: { now: Date; hour: number; queueLink: string; agencyIds?: readonly string[] },
): Promise<number> {
  const users = await db
    .selectFrom('users')
    .leftJoin('agency_policies', 'agency_policies.agency_id', 'users.agency_id')
    .select(['users.user_id', 'users.agency_id', 'users.role', 'agency_policies.policy'])
    .where('users.active', '=', true)
    .where('users.email', 'is not', null)
    .$if(options.agencyIds !== undefined, (q) => q.where('users.agency_id', 'in', [...options.agencyIds!, '']))
    .execute();
  let queued = 0;
  for (const user of users) {
    const timeZone = user.policy?.timeZone ?? DEFAULT_TIME_ZONE;
    const today = localDate(options.now.getTime(), timeZone);
    if (options.now.getTime() < startOfLocalDay(today, timeZone) + options.hour * 3_600_000) continue;
    const messageKey = `digest:${user.agency_id}:${user.user_id}:${today}`;
    const sent = await db
      .selectFrom('outbox')
      .select('message_key')
      .where('message_key', '=', messageKey)
      .executeTakeFirst();
    if (sent) continue;
    const open = await db
      .selectFrom('tasks')
      .select((eb) => [eb.fn.countAll<string>().as('all'), eb.fn.count<string>('tasks.assignee_id').as('mine')])
      .where('tasks.agency_id', '=', user.agency_id)
      .where('tasks.done_at', 'is', null)
      .where((eb) =>
        eb.or([
          eb('tasks.assignee_id', '=', user.user_id),
          eb.and([eb('tasks.assignee_id', 'is', null), eb('tasks.assignee_role', '=', user.role)]),
        ]),
      )
      .executeTakeFirstOrThrow();
    const all = Number(open.all);
    if (all === 0) continue;
    const mine = Number(open.mine);
    await db.transaction().execute(async (trx) => {
      if (
        await enqueueStaffEmail(trx, {
          messageKey,
          agencyId: user.agency_id,
          caseId: null,
          toUserId: user.user_id,
          subject: `handoff: ${all} open task${all === 1 ? '' : 's'} in your queue`,
          text: `Your queue for ${today}: ${all} open task${all === 1 ? '' : 's'} (${mine} assigned to you, ${all - mine} to your role).`,
          caseLink: options.queueLink,
        })
      )
        queued++;
    });
  }
  return queued;
}

export function newClaimId(): string {
  return randomUUID();
}

/**
 * The front desk mailed the day's batch: each letter in it not yet marked is `sent` now, audited as
 * `letter.sent` by the person who says so, in one transaction. Answers the letters it marked.
 */
export async function markBatchMailed(
  trx: Transaction<Database>,
  input: {
    agencyId: string;
    batchDate: string;
    actor: { id: string; role: Role };
    requestId: string | null;
    now: Date;
  },
): Promise<string[]> {
  const items = await trx
    .selectFrom('mail_batch_items')
    .innerJoin('cases', 'cases.case_id', 'mail_batch_items.case_id')
    .select([
      'mail_batch_items.message_key',
      'mail_batch_items.letter_id',
      'mail_batch_items.case_id',
      'cases.client_id',
    ])
    .where('mail_batch_items.agency_id', '=', input.agencyId)
    .where('mail_batch_items.batch_date', '=', input.batchDate)
    .where('mail_batch_items.mailed_at', 'is', null)
    .forUpdate()
    .execute();
  for (const item of items) {
    await trx
      .updateTable('mail_batch_items')
      .set({ mailed_at: input.now, mailed_by: input.actor.id })
      .where('message_key', '=', item.message_key)
      .execute();
    await trx
      .updateTable('outbox')
      .set({ status: 'delivered', delivered_at: input.now })
      .where('message_key', '=', item.message_key)
      .execute();
    await trx.updateTable('letters').set({ delivery: 'sent' }).where('letter_id', '=', item.letter_id).execute();
    await appendAuditEvent(trx, {
      eventKey: `${item.message_key}:sent`,
      agencyId: input.agencyId,
      actor: input.actor,
      action: 'letter.sent',
      caseId: item.case_id,
      clientId: item.client_id,
      outcome: 'done',
      requestId: input.requestId,
      after: { messageKey: item.message_key, letterId: item.letter_id, channel: 'mail', batchDate: input.batchDate },
    });
  }
  return items.map((i) => i.letter_id);
}
