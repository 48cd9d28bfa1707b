import { createHash, randomUUID } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { type Kysely, sql } from 'kysely';
import { appendAuditEvent } from '../db/audit';
import { insertCase } from '../db/cases';
import type { AuditOutcome, Database } from '../db/schema';
import type { Actor, CaseKind, CaseReason, Role } from '../domain/case';
import {
  type CaseProcessState,
  type Consent,
  type ContactChannel,
  type ContactPreferences,
  DEFAULT_POLICY,
  type Policy,
  type Referral,
  type RiskFlag,
} from '../domain/process';
import { renderLetterHtml, renderLetterPdf } from './letter';
import { createTransferActivities } from './transfer';

export interface ActivityDeps {
  db: Kysely<Database>;
  /** For the transfer activities, which start and cancel case workflows. */
  temporal?: Client;
  taskQueue?: string;
}

export interface OpenCaseInput {
  caseId: string;
  agencyId: string;
  clientId: string;
  clientName?: string;
  counselorId: string;
  kind: CaseKind;
  reason: CaseReason;
  transferId?: string | null;
  lastDay: string | null;
  noticeDue: string | null;
  riskFlags: RiskFlag[];
  contact: ContactPreferences;
  hasSubstanceUseRecords: boolean;
  openedBy: Actor;
  requestId: string | null;
  state: CaseProcessState;
}

/** One state change of a case: the read model, any referral or consent it touched, and its audit event. */
export interface TransitionInput {
  caseId: string;
  clientId: string;
  /** `<caseId>:<n>:<action>`: a retried activity writes nothing twice. */
  eventKey: string;
  /** n, the workflow's event number: activities may finish out of order, the read model keeps the newest. */
  seq: number;
  action: string;
  actor: Actor | { id: 'system'; role: 'system' };
  requestId: string | null;
  status: CaseProcessState['status'];
  step: CaseProcessState['step'];
  state: CaseProcessState;
  outcome?: AuditOutcome;
  reason?: string;
  after?: unknown;
  referral?: Referral;
  consent?: Consent;
}

export interface SendReferralInput {
  caseId: string;
  clientId: string;
  referralId: string;
  providerId: string;
  external: boolean;
  consentId: string | null;
  substanceUseRecords: boolean;
}

export interface TaskInput {
  taskKey: string;
  caseId: string;
  kind: string;
  assigneeRole: Role;
  assigneeId: string | null;
  detail: string;
}

export interface LetterResult {
  letterId: string;
  delivery: 'sent' | 'held_for_in_person';
  channel: ContactChannel | null;
}

const REDISCLOSURE_NOTICE = '42 CFR part 2 prohibits unauthorized use or disclosure of these records.';

function origin(): { workflowId: string | null; activityId: string } {
  const { info } = Context.current();
  return { workflowId: info.workflowExecution?.workflowId ?? null, activityId: info.activityId };
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Activities get their dependencies here, so the worker wires real ones and tests pass a real database. */
export function createActivities({ db, temporal, taskQueue = 'handoff' }: ActivityDeps) {
  return {
    ...createTransferActivities({ db, temporal, taskQueue }),

    /** The agency's policy, or the defaults; copied into the case so a running case never changes under it. */
    async loadPolicy({ agencyId }: { agencyId: string }): Promise<Policy> {
      const row = await db
        .selectFrom('agency_policies')
        .select('policy')
        .where('agency_id', '=', agencyId)
        .executeTakeFirst();
      return { ...DEFAULT_POLICY, ...(row?.policy ?? {}) };
    },

    /** Writes the case row and its first audit event, once, however often it is retried. */
    async openCase(input: OpenCaseInput): Promise<{ created: boolean }> {
      const { workflowId, activityId } = origin();
      return db.transaction().execute(async (trx) => {
        const created = await insertCase(trx, {
          case_id: input.caseId,
          agency_id: input.agencyId,
          client_id: input.clientId,
          client_name: input.clientName ?? '',
          counselor_id: input.counselorId,
          kind: input.kind,
          reason: input.reason,
          status: 'open',
          step: 'decision_review',
          workflow_id: workflowId ?? `case-${input.caseId}`,
          opened_by: input.openedBy.id,
          transfer_id: input.transferId ?? null,
          last_day: input.lastDay,
          notice_due: input.noticeDue,
          risk_flags: JSON.stringify(input.riskFlags),
          contact: JSON.stringify(input.contact),
          has_sud_records: input.hasSubstanceUseRecords,
          state: JSON.stringify(input.state),
        });
        await appendAuditEvent(trx, {
          eventKey: `${input.caseId}:opened`,
          actor: input.openedBy,
          action: 'case.opened',
          caseId: input.caseId,
          clientId: input.clientId,
          outcome: 'done',
          requestId: input.requestId,
          workflowId,
          activityId,
          after: {
            kind: input.kind,
            reason: input.reason,
            counselorId: input.counselorId,
            status: 'open',
            lastDay: input.lastDay,
          },
        });
        return { created };
      });
    },

    /** Records one state change of a case in the read model and the audit trail, in one transaction. */
    async recordTransition(input: TransitionInput): Promise<void> {
      const { workflowId, activityId } = origin();
      await db.transaction().execute(async (trx) => {
        const before = await trx
          .selectFrom('cases')
          .select(['status', 'step'])
          .where('case_id', '=', input.caseId)
          .executeTakeFirst();
        // The case row may not be committed yet (an action raced the opening): retry until it is.
        if (!before) throw ApplicationFailure.retryable(`case ${input.caseId} is not written yet`, 'CaseNotWrittenYet');
        await trx
          .updateTable('cases')
          .set({
            status: input.status,
            step: input.step,
            risk_flags: JSON.stringify(input.state.facts.riskFlags),
            state: JSON.stringify(input.state),
            state_version: input.seq,
            updated_at: new Date(),
          })
          .where('case_id', '=', input.caseId)
          .where('state_version', '<', input.seq)
          .execute();
        if (input.referral) {
          const r = input.referral;
          const row = {
            state: r.state,
            consent_id: r.consentId,
            appointment_at: r.appointmentAt ? new Date(r.appointmentAt) : null,
            history: JSON.stringify(r.history),
            state_version: input.seq,
            updated_at: new Date(),
          };
          await trx
            .insertInto('referrals')
            .values({
              referral_id: r.referralId,
              case_id: input.caseId,
              provider_id: r.candidate.providerId,
              provider_name: r.candidate.name,
              provider_contact: r.candidate.contact,
              external: r.candidate.external,
              ...row,
            })
            .onConflict((oc) =>
              oc.column('referral_id').doUpdateSet(row).where('referrals.state_version', '<', input.seq),
            )
            .execute();
        }
        if (input.consent) {
          const c = input.consent;
          await trx
            .insertInto('consents')
            .values({
              consent_id: c.consentId,
              case_id: input.caseId,
              client_id: input.clientId,
              recipient_provider_id: c.recipientProviderId,
              disclosed: c.disclosed,
              purpose: c.purpose,
              expires_on: c.expiresOn,
              covers_sud_records: c.coversSubstanceUseRecords,
              signed_on: c.signedOn,
              revoked_at: c.revokedAt ? new Date(c.revokedAt) : null,
            })
            .onConflict((oc) =>
              // Revocation is one-way, and only this case's own consent can be touched.
              oc
                .column('consent_id')
                .doUpdateSet({ revoked_at: sql`coalesce(consents.revoked_at, excluded.revoked_at)` })
                .where('consents.case_id', '=', input.caseId),
            )
            .execute();
        }
        await appendAuditEvent(trx, {
          eventKey: input.eventKey,
          actor: input.actor,
          action: input.action,
          caseId: input.caseId,
          clientId: input.clientId,
          outcome: input.outcome ?? 'done',
          outcomeReason: input.reason ?? null,
          requestId: input.requestId,
          workflowId,
          activityId,
          before,
          after: input.after ?? { status: input.status, step: input.step },
        });
      });
    },

    /**
     * Sends the referral: to an outside provider only under the consent the workflow checked, with the
     * redisclosure notice, and recorded in the accounting of disclosures. Delivery goes through the outbox.
     */
    async sendReferral(input: SendReferralInput): Promise<void> {
      const { workflowId, activityId } = origin();
      const key = `${input.caseId}:${input.referralId}:sent`;
      await db.transaction().execute(async (trx) => {
        const existing = await trx
          .selectFrom('outbox')
          .select('message_key')
          .where('message_key', '=', key)
          .executeTakeFirst();
        if (existing) return;
        const now = new Date();
        if (input.external) {
          if (!input.consentId)
            throw ApplicationFailure.nonRetryable('an outside referral needs a consent', 'RuleViolation');
          const consent = await trx
            .selectFrom('consents')
            .selectAll()
            .where('consent_id', '=', input.consentId)
            .executeTakeFirst();
          // The workflow checked the consent; this re-checks it at the moment of disclosure.
          const today = now.toISOString().slice(0, 10);
          if (
            !consent ||
            consent.case_id !== input.caseId ||
            consent.revoked_at ||
            consent.recipient_provider_id !== input.providerId ||
            consent.expires_on < today ||
            (input.substanceUseRecords && !consent.covers_sud_records)
          ) {
            throw ApplicationFailure.nonRetryable(
              'the consent for this disclosure is missing, revoked, expired, names someone else or does not cover substance-use records',
              'RuleViolation',
            );
          }
          await trx
            .insertInto('disclosures')
            .values({
              disclosure_id: key,
              case_id: input.caseId,
              client_id: input.clientId,
              recipient_provider_id: input.providerId,
              consent_id: input.consentId,
              disclosed: consent.disclosed,
              substance_use_records: input.substanceUseRecords,
              redisclosure_notice: input.substanceUseRecords ? REDISCLOSURE_NOTICE : null,
              disclosed_at: now,
            })
            .execute();
          await appendAuditEvent(trx, {
            eventKey: `${key}:disclosure`,
            actor: { id: 'system', role: 'system' },
            action: 'disclosure.made',
            caseId: input.caseId,
            clientId: input.clientId,
            outcome: 'done',
            workflowId,
            activityId,
            after: {
              recipient: input.providerId,
              consentId: input.consentId,
              disclosed: consent.disclosed,
              substanceUseRecords: input.substanceUseRecords,
            },
          });
        }
        await trx
          .insertInto('outbox')
          .values({
            message_key: key,
            case_id: input.caseId,
            kind: 'referral',
            channel: input.external ? 'provider_direct' : 'internal',
            recipient: input.providerId,
            payload: JSON.stringify({
              referralId: input.referralId,
              redisclosureNotice: input.substanceUseRecords ? REDISCLOSURE_NOTICE : null,
            }),
            created_at: now,
          })
          .execute();
      });
    },

    /** Renders the closing letter (HTML and PDF, with checksums) and sends it only by a safe channel. */
    async issueClosureLetter({
      caseId,
      channel,
      riskFlags,
    }: {
      caseId: string;
      channel: ContactChannel | null;
      riskFlags: RiskFlag[];
    }): Promise<LetterResult> {
      const { workflowId, activityId } = origin();
      return db.transaction().execute(async (trx) => {
        const existing = await trx
          .selectFrom('letters')
          .select(['letter_id', 'delivery', 'channel'])
          .where('case_id', '=', caseId)
          .executeTakeFirst();
        if (existing) return { letterId: existing.letter_id, delivery: existing.delivery, channel: existing.channel };
        const row = await trx.selectFrom('cases').selectAll().where('case_id', '=', caseId).executeTakeFirstOrThrow();
        const state = row.state!;
        const agency = await trx
          .selectFrom('agency_policies')
          .select(['agency_name', 'agency_phone'])
          .where('agency_id', '=', row.agency_id)
          .executeTakeFirst();
        const referral = await trx
          .selectFrom('referrals')
          .select(['provider_name', 'provider_contact'])
          .where('case_id', '=', caseId)
          .where('state', 'in', ['accepted', 'first_appointment_scheduled', 'first_appointment_kept', 'no_show'])
          .executeTakeFirst();
        const content = {
          clientName: row.client_name || 'client',
          agencyName: agency?.agency_name ?? row.agency_id,
          agencyPhone: agency?.agency_phone ?? 'the number on your last appointment card',
          issuedOn: new Date().toISOString().slice(0, 10),
          lastSessionDate: state.conversation.lastSessionDate,
          reason: row.reason,
          referral: referral ? { name: referral.provider_name, contact: referral.provider_contact } : null,
          domesticViolenceResources: riskFlags.includes('domestic_violence'),
        };
        const html = renderLetterHtml(content);
        const pdf = await renderLetterPdf(content);
        // The channel is the workflow's decision (safe contact), made on the facts it holds now.
        const delivery = channel ? 'sent' : 'held_for_in_person';
        const letterId = randomUUID();
        await trx
          .insertInto('letters')
          .values({
            letter_id: letterId,
            case_id: caseId,
            html,
            pdf,
            pdf_sha256: sha256(pdf),
            html_sha256: sha256(html),
            channel,
            delivery,
          })
          .execute();
        if (channel) {
          await trx
            .insertInto('outbox')
            .values({
              message_key: `${caseId}:letter`,
              case_id: caseId,
              kind: 'closure_letter',
              channel,
              recipient: row.client_id,
              payload: JSON.stringify({ letterId }),
            })
            .execute();
        }
        await appendAuditEvent(trx, {
          eventKey: `${caseId}:letter:generated`,
          actor: { id: 'system', role: 'system' },
          action: 'letter.generated',
          caseId,
          clientId: row.client_id,
          outcome: 'done',
          workflowId,
          activityId,
          after: { letterId, pdfSha256: sha256(pdf), htmlSha256: sha256(html), delivery, channel },
        });
        return { letterId, delivery, channel };
      });
    },

    /** A task for a person (an escalation, an outreach): created once per key. */
    async createTask(input: TaskInput): Promise<void> {
      await db
        .insertInto('tasks')
        .values({
          task_key: input.taskKey,
          case_id: input.caseId,
          kind: input.kind,
          assignee_role: input.assigneeRole,
          assignee_id: input.assigneeId,
          detail: input.detail,
        })
        .onConflict((oc) => oc.column('task_key').doNothing())
        .execute();
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
