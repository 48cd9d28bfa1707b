import { createHash, randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { type Transporter, createTransport } from 'nodemailer';
import { createActivities } from '../activities';
import { type DeliveryOptions, type Mailer, createSender } from '../activities/delivery';
import { listCaseAuditEvents } from '../db/audit';
import { ClientDetailInStaffEmail, enqueueStaffEmail } from '../db/outbox';
import { upsertUser } from '../db/users';
import { type MailCatcher, startMailCatcher } from '../scripts/mail-catcher';
import { outboxSenderWorkflow } from '../workflows/outbox-sender';
import { COUNSELOR, CaseDriver, DIRECTOR, STAFF, release, today } from './support/cases';
import { testContext } from './support/context';
import { testDataConverter } from './support/payload-keys';
import { parseMail } from './support/mime';
import { type TestStack, eventually, inAgency, startStack } from './support/stack';

/**
 * Delivery through the outbox: a real SMTP server in this process receives what the sender sends, and the
 * tests read what arrived. Every case here lives in an agency of its own, and the sender drains only it.
 */

const AGENCY = { agencyId: `agency-dl-${randomUUID().slice(0, 8)}` };
const staff = inAgency(STAFF, AGENCY);
const director = inAgency(DIRECTOR, AGENCY);
const counselor = inAgency(COUNSELOR, AGENCY);
const FROM = 'handoff@agency.example';

let stack: TestStack;
let catcher: MailCatcher;
let transport: Transporter;
const refused = new Set<string>();

beforeAll(async () => {
  stack = await startStack();
  catcher = await startMailCatcher({ refuse: (to) => (to.some((t) => refused.has(t)) ? 'mailbox busy' : null) });
  transport = createTransport(catcher.url);
});
afterAll(async () => {
  transport.close();
  await catcher.stop();
  await stack.close();
});

function sender(overrides: Partial<DeliveryOptions> = {}) {
  return createSender(stack.db, {
    mailer: transport,
    from: FROM,
    publicUrl: 'https://handoff.example',
    backoffMs: 1_000,
    digestHour: null,
    agencyIds: [AGENCY.agencyId],
    ...overrides,
  });
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const arrivedTo = (address: string) => catcher.messages.filter((m) => m.to.includes(address));

async function actions(caseId: string) {
  return (await listCaseAuditEvents(stack.db, caseId)).map((e) => e.action);
}

const northside = (id: string) => ({
  providerId: id,
  name: `${id} Counseling`,
  external: true,
  contact: `intake@${id}.example`,
});

/** A case of the test agency driven to its letter: approved, conversation held, an outside receiver accepted. */
async function caseToLetter(contact: Record<string, unknown>) {
  const c = await CaseDriver.open(stack, { agencyId: AGENCY.agencyId, contact });
  await c.act('review', { decision: 'approve', rationale: 'relocation; continuity planned' }, director);
  await c.act(
    'conversation',
    { heldOn: today(), clientChoice: 'accept_proposed', lastSessionDate: today() },
    counselor,
  );
  const providerId = `north-${randomUUID().slice(0, 6)}`;
  await c.act('consents', release(providerId), staff);
  await c.act('referrals', { candidates: [northside(providerId)] }, staff);
  const view = await c.until((v) => v.process.referrals[0]?.state === 'sent');
  const referralId: string = view.process.referrals[0].referralId;
  return { c, providerId, referralId };
}

async function finishHandoff(c: CaseDriver, referralId: string) {
  await c.act(`referrals/${referralId}/response`, { response: 'accepted' }, staff);
  await c.act(`referrals/${referralId}/appointment`, { scheduledFor: `${today(5)}T15:00:00Z` }, staff);
  return c.until((v) => v.step === 'follow_up');
}

describe('the client’s letter and the referral notice', () => {
  test('when email is the client’s confirmed safe channel, then the notice goes to the provider with what the release allows, and the letter arrives with the PDF whose SHA-256 is the letter’s; the audit says queued, then sent', async () => {
    const email = `sam-${randomUUID().slice(0, 6)}@client.example`;
    const { c, providerId, referralId } = await caseToLetter({
      channels: [
        { channel: 'portal', safe: true },
        { channel: 'email', safe: true },
      ],
      noContactAtHome: true,
      email,
    });
    expect(await actions(c.caseId)).toContain('referral_notice.queued');
    expect(await actions(c.caseId)).not.toContain('referral_notice.sent');

    const first = await sender().deliverBatch();
    expect(first).toMatchObject({ sent: 1, failed: 0, dead: 0 });
    const [notice] = arrivedTo(`intake@${providerId}.example`);
    const noticeMail = parseMail(notice!.raw);
    expect(noticeMail.headers.subject).toMatch(/^Referral from /);
    expect(noticeMail.text).toContain('treatment summary and diagnosis');
    expect(noticeMail.text).toContain('continuity of care');
    expect(noticeMail.text).not.toContain(email);
    expect(noticeMail.text).not.toContain('42 CFR');
    expect(noticeMail.attachments).toEqual([]);
    expect(await actions(c.caseId)).toContain('referral_notice.sent');

    const view = await finishHandoff(c, referralId);
    expect(view.process.letter).toMatchObject({ delivery: 'queued', channel: 'email' });
    expect(arrivedTo(email)).toEqual([]);
    expect(await actions(c.caseId)).not.toContain('letter.sent');

    expect(await sender().deliverBatch()).toMatchObject({ sent: 1 });
    const letter = await stack.db
      .selectFrom('letters')
      .select(['pdf_sha256', 'delivery'])
      .where('case_id', '=', c.caseId)
      .executeTakeFirstOrThrow();
    const arrived = arrivedTo(email);
    expect(arrived).toHaveLength(1);
    const mail = parseMail(arrived[0]!.raw);
    expect(mail.headers.from).toContain(FROM);
    expect(mail.attachments).toHaveLength(1);
    expect(mail.attachments[0]).toMatchObject({ filename: 'letter.pdf', contentType: 'application/pdf' });
    expect(sha256(mail.attachments[0]!.content)).toBe(letter.pdf_sha256);
    expect(letter.delivery).toBe('sent');
    const trail = await actions(c.caseId);
    expect(trail.indexOf('letter.queued')).toBeGreaterThan(-1);
    expect(trail.indexOf('letter.sent')).toBeGreaterThan(trail.indexOf('letter.queued'));
    const sent = (await listCaseAuditEvents(stack.db, c.caseId)).find((e) => e.action === 'letter.sent');
    expect(sent?.after).toMatchObject({ channel: 'email', pdfSha256: letter.pdf_sha256 });
    // The case's own view says it left, not that it is still queued.
    expect((await c.view()).process.letter.delivery).toBe('sent');

    // Delivered is delivered: the next batch sends nothing again.
    expect(await sender().deliverBatch()).toMatchObject({ claimed: 0 });
    expect(arrivedTo(email)).toHaveLength(1);
  });

  test('when mail is the client’s safe channel, then the letter joins the day’s print batch (one PDF for the front desk) and is sent only once the batch is mailed', async () => {
    const { c, referralId } = await caseToLetter({
      channels: [{ channel: 'mail', safe: true }],
      noContactAtHome: true,
      postalAddress: '12 Elm Street\nSpringfield, IL 62701',
    });
    await sender().deliverBatch();
    await finishHandoff(c, referralId);
    const before = catcher.messages.length;
    expect(await sender().deliverBatch()).toMatchObject({ sent: 1 });
    expect(catcher.messages).toHaveLength(before);
    expect(await actions(c.caseId)).toContain('letter.batched_for_mail');
    expect(await actions(c.caseId)).not.toContain('letter.sent');

    const day = today();
    const batch = await stack.request('GET', `/v1/mail-batches/${day}`, { actor: staff });
    expect(batch.status).toBe(200);
    expect(batch.body.letters.map((l: { caseId: string }) => l.caseId)).toContain(c.caseId);
    const pdf = await stack.request('GET', `/v1/mail-batches/${day}/letters.pdf`, { actor: staff });
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toContain('application/pdf');
    expect(String(pdf.body).slice(0, 5)).toBe('%PDF-');
    expect((await stack.request('GET', `/v1/mail-batches/${day}/letters.pdf`, { actor: counselor })).status).toBe(403);

    const mailed = await stack.request('POST', `/v1/mail-batches/${day}/mailed`, { actor: staff });
    expect(mailed.status).toBe(200);
    const sent = (await listCaseAuditEvents(stack.db, c.caseId)).filter((e) => e.action === 'letter.sent');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ actor_id: STAFF.id, after: expect.objectContaining({ channel: 'mail' }) });
    const again = await stack.request('POST', `/v1/mail-batches/${day}/mailed`, { actor: staff });
    expect(again.body.mailed).toEqual([]);
  });

  test('when no channel the client confirmed safe can carry a letter, then it is held for in-person delivery and nothing is sent', async () => {
    const { c, referralId } = await caseToLetter({
      channels: [
        { channel: 'email', safe: false },
        { channel: 'portal', safe: true },
      ],
      noContactAtHome: true,
      email: 'shared@home.example',
    });
    await sender().deliverBatch();
    const view = await finishHandoff(c, referralId);
    expect(view.process.letter).toMatchObject({ delivery: 'held_for_in_person', channel: null });
    await sender().deliverBatch();
    expect(arrivedTo('shared@home.example')).toEqual([]);
    const trail = await actions(c.caseId);
    expect(trail).toContain('letter.held_for_in_person');
    expect(trail).not.toContain('letter.sent');
  });

  test('when the release is revoked after the notice was queued, then the notice is withheld at send time and becomes a task for staff', async () => {
    const { c, providerId } = await caseToLetter({ channels: [], noContactAtHome: false });
    const consentId: string = (await c.view()).process.consents[0].consentId;
    await stack.db
      .updateTable('consents')
      .set({ revoked_at: new Date() })
      .where('consent_id', '=', consentId)
      .execute();
    await sender().deliverBatch();
    expect(arrivedTo(`intake@${providerId}.example`)).toEqual([]);
    const events = await listCaseAuditEvents(stack.db, c.caseId);
    expect(events.find((e) => e.action === 'referral_notice.withheld')?.outcome_reason).toMatch(/revoked/);
    const task = await stack.db
      .selectFrom('tasks')
      .selectAll()
      .where('case_id', '=', c.caseId)
      .where('kind', '=', 'delivery.failed')
      .executeTakeFirst();
    expect(task).toMatchObject({ assignee_role: 'staff', assignee_id: null });
  });
});

describe('email to staff', () => {
  async function someCase() {
    const c = await CaseDriver.open(stack, {
      agencyId: AGENCY.agencyId,
      clientName: 'Robin Quill',
      contact: { channels: [{ channel: 'email', safe: true }], noContactAtHome: true, email: 'robin@client.example' },
      riskFlags: ['suicide_risk'],
    });
    return c;
  }

  async function staffWithEmail(email: string) {
    const userId = `staff-${randomUUID().slice(0, 6)}`;
    await upsertUser(stack.db, { id: userId, role: 'staff', agencyId: AGENCY.agencyId, name: 'Front Desk', email });
    return userId;
  }

  test('when a task email is queued, then it arrives with the link to the case and no client name, flag or contact; one naming the client is refused', async () => {
    const c = await someCase();
    const to = `desk-${randomUUID().slice(0, 6)}@agency.example`;
    const userId = await staffWithEmail(to);
    await expect(
      stack.db.transaction().execute((trx) =>
        enqueueStaffEmail(trx, {
          messageKey: `${c.caseId}:bad`,
          agencyId: AGENCY.agencyId,
          caseId: c.caseId,
          toUserId: userId,
          subject: 'Task: call Robin Quill',
          text: 'please call',
          caseLink: `/v1/cases/${c.caseId}`,
        }),
      ),
    ).rejects.toThrow(ClientDetailInStaffEmail);
    await expect(
      stack.db.transaction().execute((trx) =>
        enqueueStaffEmail(trx, {
          messageKey: `${c.caseId}:bad-flag`,
          agencyId: AGENCY.agencyId,
          caseId: c.caseId,
          toUserId: userId,
          subject: 'Escalated: a client at suicide risk',
          text: 'please look',
          caseLink: `/v1/cases/${c.caseId}`,
        }),
      ),
    ).rejects.toThrow(ClientDetailInStaffEmail);
    await stack.db.transaction().execute((trx) =>
      enqueueStaffEmail(trx, {
        messageKey: `${c.caseId}:task:assigned`,
        agencyId: AGENCY.agencyId,
        caseId: c.caseId,
        toUserId: userId,
        subject: 'handoff: a task was assigned to you',
        text: 'A task on a case is waiting for you.',
        caseLink: `/v1/cases/${c.caseId}`,
      }),
    );
    await sender().deliverBatch();
    const arrived = arrivedTo(to);
    expect(arrived).toHaveLength(1);
    const raw = arrived[0]!.raw.toString('utf8');
    expect(parseMail(arrived[0]!.raw).text).toContain(`https://handoff.example/v1/cases/${c.caseId}`);
    for (const detail of ['Robin', 'Quill', 'robin@client.example', 'suicide', c.clientId])
      expect(raw).not.toContain(detail);
    expect(await actions(c.caseId)).toEqual(expect.arrayContaining(['staff_email.queued', 'staff_email.sent']));
  });

  test('when the server refuses a message every time, then it is retried with backoff, dead-lettered after the last attempt, and a task asks staff to deliver it', async () => {
    const c = await someCase();
    const to = `busy-${randomUUID().slice(0, 6)}@agency.example`;
    refused.add(to);
    const userId = await staffWithEmail(to);
    const key = `${c.caseId}:task:escalated`;
    await stack.db.transaction().execute((trx) =>
      enqueueStaffEmail(trx, {
        messageKey: key,
        agencyId: AGENCY.agencyId,
        caseId: c.caseId,
        toUserId: userId,
        subject: 'handoff: a task was escalated to you',
        text: 'An escalated task is waiting for you.',
        caseLink: `/v1/cases/${c.caseId}`,
      }),
    );
    const send = sender({ maxAttempts: 3 });
    let clock = Date.now();
    expect(await send.deliverBatch(undefined, () => new Date(clock))).toMatchObject({ failed: 1 });
    let row = await stack.db.selectFrom('outbox').selectAll().where('message_key', '=', key).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'pending', attempts: 1 });
    expect(row.next_attempt_at.getTime()).toBeGreaterThanOrEqual(clock + 1_000);
    // Not due yet: nothing is tried before the backoff runs out.
    expect(await send.deliverBatch(undefined, () => new Date(clock))).toMatchObject({ claimed: 0 });
    clock += 1_000;
    expect(await send.deliverBatch(undefined, () => new Date(clock))).toMatchObject({ failed: 1 });
    row = await stack.db.selectFrom('outbox').selectAll().where('message_key', '=', key).executeTakeFirstOrThrow();
    expect(row.next_attempt_at.getTime()).toBe(clock + 2_000);
    clock += 2_000;
    expect(await send.deliverBatch(undefined, () => new Date(clock))).toMatchObject({ dead: 1 });
    row = await stack.db.selectFrom('outbox').selectAll().where('message_key', '=', key).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'dead', attempts: 3, delivered_at: null });
    expect(arrivedTo(to)).toEqual([]);

    const task = await stack.db
      .selectFrom('tasks')
      .selectAll()
      .where('task_key', '=', `${key}:delivery.failed`)
      .executeTakeFirstOrThrow();
    expect(task).toMatchObject({
      case_id: c.caseId,
      kind: 'delivery.failed',
      assignee_role: 'staff',
      assignee_id: null,
    });
    for (const detail of ['Robin', 'Quill', 'suicide']) expect(task.detail).not.toContain(detail);
    const trail = (await listCaseAuditEvents(stack.db, c.caseId)).filter((e) => e.action.startsWith('staff_email.'));
    expect(trail.map((e) => [e.action, e.outcome])).toEqual([
      ['staff_email.queued', 'done'],
      ['staff_email.send_failed', 'failed'],
      ['staff_email.send_failed', 'failed'],
      ['staff_email.dead_lettered', 'failed'],
    ]);
  });

  test('when the sender dies after the server accepted a message and before marking it, then the next sender sends it again under the same Message-ID, and the receiver keeps one', async () => {
    const c = await someCase();
    const to = `crash-${randomUUID().slice(0, 6)}@agency.example`;
    const userId = await staffWithEmail(to);
    const key = `${c.caseId}:task:crash`;
    await stack.db.transaction().execute((trx) =>
      enqueueStaffEmail(trx, {
        messageKey: key,
        agencyId: AGENCY.agencyId,
        caseId: c.caseId,
        toUserId: userId,
        subject: 'handoff: a task was assigned to you',
        text: 'A task on a case is waiting for you.',
        caseLink: `/v1/cases/${c.caseId}`,
      }),
    );
    // The first sender's SMTP call delivers, then never returns: as if the process died right there.
    let wake: () => void = () => {};
    const dying: Mailer = {
      async sendMail(message) {
        await transport.sendMail(message);
        await new Promise<void>((resolve) => (wake = resolve));
      },
    };
    const leaseMs = 60_000;
    const first = sender({ mailer: dying, leaseMs }).deliverBatch();
    await eventually(async () => arrivedTo(to).length === 1);
    expect(
      (await stack.db.selectFrom('outbox').select('status').where('message_key', '=', key).executeTakeFirstOrThrow())
        .status,
    ).toBe('sending');

    // Within the lease nobody touches it; after it, a new sender takes it over.
    expect(await sender({ leaseMs }).deliverBatch()).toMatchObject({ claimed: 0 });
    const later = new Date(Date.now() + leaseMs + 1_000);
    expect(await sender({ leaseMs }).deliverBatch(undefined, () => later)).toMatchObject({ sent: 1 });

    // The dead sender wakes up: it lost its claim and marks nothing.
    wake();
    await first;
    const copies = arrivedTo(to);
    expect(copies).toHaveLength(2);
    expect(copies[0]!.messageId).toBeTruthy();
    expect(copies[1]!.messageId).toBe(copies[0]!.messageId);
    expect(catcher.unique().filter((m) => m.to.includes(to))).toHaveLength(1);
    const row = await stack.db
      .selectFrom('outbox')
      .selectAll()
      .where('message_key', '=', key)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'delivered', attempts: 2 });
    const sent = (await listCaseAuditEvents(stack.db, c.caseId)).filter((e) => e.action === 'staff_email.sent');
    expect(sent).toHaveLength(1);
  });

  test('when the worker runs the outbox sender workflow, then a queued email goes out without anyone calling it', async () => {
    const c = await someCase();
    const to = `loop-${randomUUID().slice(0, 6)}@agency.example`;
    const userId = await staffWithEmail(to);
    const taskQueue = `sender-${randomUUID()}`;
    const { NativeConnection } = await import('@temporalio/worker');
    const connection = await NativeConnection.connect({ address: testContext().temporalAddress });
    const worker = await Worker.create({
      connection,
      taskQueue,
      dataConverter: testDataConverter(),
      workflowBundle: { codePath: testContext().workflowBundlePath },
      activities: createActivities({
        db: stack.db,
        delivery: {
          mailer: transport,
          from: FROM,
          publicUrl: 'https://handoff.example',
          digestHour: null,
          agencyIds: [AGENCY.agencyId],
        },
      }),
    });
    const running = worker.run();
    const handle = await stack.client.workflow.start(outboxSenderWorkflow, {
      workflowId: `outbox-sender-${taskQueue}`,
      taskQueue,
      args: [{ intervalMs: 200 }],
    });
    try {
      await stack.db.transaction().execute((trx) =>
        enqueueStaffEmail(trx, {
          messageKey: `${c.caseId}:task:loop`,
          agencyId: AGENCY.agencyId,
          caseId: c.caseId,
          toUserId: userId,
          subject: 'handoff: a task was assigned to you',
          text: 'A task on a case is waiting for you.',
          caseLink: `/v1/cases/${c.caseId}`,
        }),
      );
      await eventually(async () => arrivedTo(to).length === 1);
    } finally {
      await handle.terminate('test done');
      worker.shutdown();
      await running;
      await connection.close();
    }
  });
  test('when the agency’s digest hour has come, then each user with open tasks gets one digest of their queue that day, counts and a link only', async () => {
    const c = await someCase();
    const to = `digest-${randomUUID().slice(0, 6)}@agency.example`;
    const userId = `counselor-${randomUUID().slice(0, 6)}`;
    await upsertUser(stack.db, { id: userId, role: 'counselor', agencyId: AGENCY.agencyId, name: 'Dana', email: to });
    await stack.db
      .insertInto('tasks')
      .values({
        task_key: `${c.caseId}:digest-test`,
        agency_id: AGENCY.agencyId,
        case_id: c.caseId,
        kind: 'outreach.follow_up',
        assignee_role: 'counselor',
        assignee_id: userId,
        detail: 'reach out',
      })
      .execute();
    await sender({ digestHour: 0 }).deliverBatch();
    await sender({ digestHour: 0 }).deliverBatch();
    const arrived = arrivedTo(to);
    expect(arrived).toHaveLength(1);
    const mail = parseMail(arrived[0]!.raw);
    expect(mail.headers.subject).toBe('handoff: 1 open task in your queue');
    expect(mail.text).toContain('https://handoff.example/v1/tasks');
    for (const detail of ['Robin', 'Quill', 'suicide', 'reach out', c.caseId]) expect(mail.text).not.toContain(detail);
  });
});
