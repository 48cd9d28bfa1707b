import { createHash, randomUUID } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { type Kysely, type Selectable, type Transaction, sql } from 'kysely';
import { type AuditEventInput, appendAuditEvent, appendAuditEvents } from '../db/audit';
import { findCase, insertCase, writeOpenedCase } from '../db/cases';
import { coveringDirector, notifyAssignee, syncCaseTasks } from '../db/tasks';
import { openWaits } from '../domain/work-queue';
import { clientFacts, openingRecord } from '../db/clients';
import { agencyPolicy, findAgencyPolicy, withDefaults } from '../db/policies';
import type { AuditOutcome, ConsentsTable, Database } from '../db/schema';
import type { Actor, CaseKind, CaseReason, Role } from '../domain/case';
import {
  type CaseClientFacts,
  type CaseProcessState,
  type Consent,
  type ContactChannel,
  type ContactPreferences,
  type Policy,
  type Referral,
  type RiskFlag,
  caseClientFacts,
  openedState,
} from '../domain/process';
import { REDISCLOSURE_NOTICE, isBlocker, releaseFor } from '../domain/rules/consent-before-disclosure';
import { type ListFacts, listFacts } from '../domain/case-list';
import { noticeDueDate } from '../domain/rules/deadlines';
import { letterRoute } from '../domain/rules/safe-contact';
import { DEFAULT_LOCALE, DEFAULT_TIME_ZONE, localDate } from '../domain/time';
import { type DeliveryOptions, NO_DELIVERY, createDeliveryActivities } from './delivery';
import { nonRetryableDataErrors } from './failures';
import { renderLetterHtml, renderLetterPdf } from './letter';
import { createReconcileActivities } from './reconcile';
import { createTransferActivities } from './transfer';

export interface ActivityDeps {
  db: Kysely<Database>;
  /** For the transfer activities, which start and cancel case workflows. */
  temporal?: Client;
  taskQueue?: string;
  /** The outbox sender's SMTP client and addresses; without it, emails fail and become tasks. */
  delivery?: DeliveryOptions;
  /** Where the audit anchors are, for the reconcile's chain check. */
  auditAnchorFile?: string;
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

/** What the workflow sends to open a case: ids and the case's own choices, never the client's facts. */
export interface OpenCaseFromRecordInput {
  caseId: string;
  agencyId: string;
  clientId: string;
  kind: CaseKind;
  reason: CaseReason;
  lastDay: string | null;
  transferId: string | null;
  openedBy: Actor;
  requestId: string | null;
  /** The workflow's state before opening; the row holds it as opened. */
  state: CaseProcessState;
  /** A transfer's proposed receivers, recorded with the opening (in the same transaction). */
  proposal?: OpeningProposal;
}

/** The `referral.candidates_proposed` event a transfer's case records as it opens: its key, its place, who. */
export interface OpeningProposal {
  eventKey: string;
  seq: number;
  providers: string[];
}

export interface OpenedCase {
  policy: Policy;
  /** What the case needs of the record: no name, no address (the activities that write to the client read those). */
  facts: CaseClientFacts;
  /** The agency's date the case opened. */
  openedOn: string;
}

export interface SendReferralInput {
  caseId: string;
  agencyId: string;
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
  /** `queued`: in the outbox, `letter.sent` is audited when it leaves. (`sent` in cases from before the outbox.) */
  delivery: 'queued' | 'sent' | 'held_for_in_person';
  channel: ContactChannel | null;
  /** The safe-contact rule and the fact behind it, when the letter is held. */
  heldBecause: string | null;
}

/** A failure no retry can fix, with a message that names ids and rules only, never what a client said. */
function refusal(
  type: 'NotFound' | 'RuleViolation' | 'InvalidInput' | 'Conflict',
  message: string,
  rule?: string,
): never {
  throw ApplicationFailure.create({ type, message, nonRetryable: true, details: rule ? [{ rule }] : [] });
}

function origin(): { workflowId: string | null; activityId: string } {
  const { info } = Context.current();
  return { workflowId: info.workflowExecution?.workflowId ?? null, activityId: info.activityId };
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The read model's list columns (domain/case-list.ts). */
function listColumns(list: ListFacts) {
  return {
    due_at: list.dueAtMs === null ? null : new Date(list.dueAtMs),
    escalated: list.escalated,
    blocker_rules: list.blockerRules,
  };
}

function consentOf(row: Selectable<ConsentsTable>): Consent {
  return {
    consentId: row.consent_id,
    recipientProviderId: row.recipient_provider_id,
    disclosed: row.disclosed,
    purpose: row.purpose,
    expiresOn: row.expires_on,
    coversSubstanceUseRecords: row.covers_sud_records,
    revocable: true,
    signedOn: row.signed_on,
    revokedAt: row.revoked_at ? row.revoked_at.toISOString() : null,
  };
}

/**
 * Activities get their dependencies here, so the worker wires real ones and tests pass a real database.
 * Data PostgreSQL refuses fails at once (non-retryable, without the data in the message), never retries forever.
 */
export function createActivities({
  db,
  temporal,
  taskQueue = 'handoff',
  delivery = NO_DELIVERY,
  auditAnchorFile,
}: ActivityDeps) {
  const policyOf = (agencyId: string): Promise<Policy> => agencyPolicy(db, agencyId);

  /** Opens the tasks for what the case now waits on, and closes those it no longer waits on. */
  const syncWaits = async (
    trx: Transaction<Database>,
    agencyId: string,
    state: CaseProcessState,
    opening = false,
  ): Promise<void> => {
    await syncCaseTasks(trx, {
      agencyId,
      caseId: state.facts.caseId,
      counselorId: state.facts.counselorId,
      policy: state.policy,
      waits: openWaits(state, Date.now()),
      ended: state.status !== 'open',
      opening,
    });
  };

  return nonRetryableDataErrors({
    ...createTransferActivities({ db, temporal, taskQueue }),
    ...createDeliveryActivities(db, delivery, origin),
    ...createReconcileActivities({ db, temporal, auditAnchorFile }),

    /** The agency's policy, or the defaults; copied into the case so a running case never changes under it. */
    async loadPolicy({ agencyId }: { agencyId: string }): Promise<Policy> {
      return policyOf(agencyId);
    },

    /**
     * Opens a case from the agency's client record: reads the client's facts (counselor, risk flags, contact
     * preferences, substance-use records) and the policy, writes the case row over its reservation, its first
     * tasks and its first audit events, in one transaction, once however often it is retried. A new case costs
     * four statements: the record with the policy, the row, its task, its events.
     */
    async openCaseFromRecord(input: OpenCaseFromRecordInput): Promise<OpenedCase> {
      const { workflowId, activityId } = origin();
      return db.transaction().execute(async (trx) => {
        const record = await openingRecord(trx, input.agencyId, input.clientId);
        if (!record) refusal('NotFound', `agency ${input.agencyId} has no client ${input.clientId}`);
        const { policy } = record;
        const facts = caseClientFacts(record.client);
        const now = Date.now();
        const openedOn = localDate(now, policy.timeZone ?? DEFAULT_TIME_ZONE);
        const state = openedState(input.state, { policy, facts, openedOn });
        const list = listFacts(state, { nowMs: now, stepSinceMs: now });
        const written = await writeOpenedCase(trx, {
          case_id: input.caseId,
          agency_id: input.agencyId,
          client_id: input.clientId,
          client_name: record.client.name,
          counselor_id: facts.counselorId,
          kind: input.kind,
          reason: input.reason,
          status: 'open',
          step: 'decision_review',
          workflow_id: workflowId ?? `case-${input.caseId}`,
          opened_by: input.openedBy.id,
          transfer_id: input.transferId,
          last_day: input.lastDay,
          notice_due: noticeDueDate(input.lastDay, policy),
          risk_flags: JSON.stringify(facts.riskFlags),
          contact: JSON.stringify(facts.contact),
          has_sud_records: facts.hasSubstanceUseRecords,
          state: JSON.stringify(state),
          ...(input.proposal ? { state_version: input.proposal.seq } : {}),
          ...listColumns(list),
          step_since: new Date(now),
        }).catch((error: unknown) => {
          // Another case of this client opened in the meantime: one open case per client, so this one may not.
          if ((error as { constraint?: string }).constraint === 'cases_one_open_per_client') {
            refusal('Conflict', `client ${input.clientId} already has an open case`, 'one_open_case');
          }
          throw error;
        });
        if (!written) {
          // The row is past opening: a retry after the case was written answers what was written then.
          const existing = await trx
            .selectFrom('cases')
            .select('state')
            .where('case_id', '=', input.caseId)
            .executeTakeFirst();
          if (existing?.state) {
            const was = existing.state;
            return { policy: was.policy, facts: caseClientFacts(was.facts), openedOn: was.openedOn ?? '' };
          }
        }
        await syncWaits(trx, input.agencyId, state, written);
        const opened: AuditEventInput = {
          eventKey: `${input.caseId}:opened`,
          agencyId: input.agencyId,
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
            counselorId: facts.counselorId,
            status: 'open',
            lastDay: input.lastDay,
            factsFrom: 'client record',
          },
        };
        const proposed: AuditEventInput[] = input.proposal
          ? [
              {
                eventKey: input.proposal.eventKey,
                agencyId: input.agencyId,
                actor: { id: 'system', role: 'system' },
                action: 'referral.candidates_proposed',
                caseId: input.caseId,
                clientId: input.clientId,
                outcome: 'done',
                requestId: null,
                workflowId,
                activityId,
                before: { status: 'open', step: 'decision_review' },
                after: { providers: input.proposal.providers },
              },
            ]
          : [];
        await appendAuditEvents(trx, [opened, ...proposed]);
        return { policy, facts, openedOn };
      });
    },

    /** The client's facts as the agency's record holds them now, as a case holds them (no name, no address). */
    async readCaseFacts({ agencyId, clientId }: { agencyId: string; clientId: string }): Promise<CaseClientFacts> {
      const client = await clientFacts(db, agencyId, clientId);
      if (!client) refusal('NotFound', `agency ${agencyId} has no client ${clientId}`);
      return caseClientFacts(client);
    },

    /**
     * Writes the case row and its first audit event, once, however often it is retried. Only cases started
     * before facts came from the record call it (see FACTS_FROM_RECORD); remove it once none of them runs.
     */
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
        const row = await trx
          .selectFrom('cases')
          .select(['agency_id', 'status', 'step', 'step_since'])
          .where('case_id', '=', input.caseId)
          .executeTakeFirst();
        // The case row may not be committed yet (an action raced the opening): retry until it is.
        if (!row) throw ApplicationFailure.retryable(`case ${input.caseId} is not written yet`, 'CaseNotWrittenYet');
        const before = { status: row.status, step: row.step };
        const now = Date.now();
        const stepSince = row.step === input.step ? row.step_since : new Date(now);
        const list = listFacts(input.state, { nowMs: now, stepSinceMs: stepSince.getTime() });
        const written = await trx
          .updateTable('cases')
          .set({
            status: input.status,
            step: input.step,
            risk_flags: JSON.stringify(input.state.facts.riskFlags),
            ...(input.state.facts.counselorId
              ? {
                  counselor_id: input.state.facts.counselorId,
                  contact: JSON.stringify(input.state.facts.contact),
                  has_sud_records: input.state.facts.hasSubstanceUseRecords,
                }
              : {}),
            state: JSON.stringify(input.state),
            state_version: input.seq,
            updated_at: new Date(now),
            ...listColumns(list),
            step_since: stepSince,
          })
          .where('case_id', '=', input.caseId)
          .where('state_version', '<', input.seq)
          .returning('agency_id')
          .executeTakeFirst();
        // The newest snapshot also decides which waits are open: each is a task in someone's queue.
        if (written) await syncWaits(trx, written.agency_id, input.state);
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
          // The case's agency, as read above: appendAuditEvent need not look it up again.
          agencyId: row.agency_id,
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
        // Substance-use status is read from the client record at the moment of disclosure, not from the case.
        const facts = await clientFacts(trx, input.agencyId, input.clientId);
        const substanceUseRecords = facts ? facts.hasSubstanceUseRecords : input.substanceUseRecords;
        if (input.external) {
          if (!input.consentId)
            refusal('RuleViolation', 'an outside referral needs a release', 'consent_before_disclosure');
          const row = await trx
            .selectFrom('consents')
            .selectAll()
            .where('consent_id', '=', input.consentId)
            .where('case_id', '=', input.caseId)
            .executeTakeFirst();
          const policy = await policyOf(input.agencyId);
          // The workflow checked the release; this re-checks it, by the same rule, at the moment of disclosure.
          const release = releaseFor(row ? [consentOf(row)] : [], {
            providerId: input.providerId,
            providerName: input.providerId,
            today: localDate(now.getTime(), policy.timeZone ?? DEFAULT_TIME_ZONE),
            substanceUseRecords,
          });
          if (isBlocker(release)) refusal('RuleViolation', release.detail, release.rule);
          const consent = row!;
          await trx
            .insertInto('disclosures')
            .values({
              disclosure_id: key,
              case_id: input.caseId,
              client_id: input.clientId,
              recipient_provider_id: input.providerId,
              consent_id: input.consentId,
              disclosed: consent.disclosed,
              substance_use_records: substanceUseRecords,
              redisclosure_notice: substanceUseRecords ? REDISCLOSURE_NOTICE : null,
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
              substanceUseRecords,
            },
          });
        }
        await trx
          .insertInto('outbox')
          .values({
            message_key: key,
            case_id: input.caseId,
            agency_id: input.agencyId,
            kind: 'referral',
            channel: input.external ? 'provider_direct' : 'internal',
            recipient: input.providerId,
            payload: JSON.stringify({
              referralId: input.referralId,
              redisclosureNotice: substanceUseRecords ? REDISCLOSURE_NOTICE : null,
            }),
            created_at: now,
          })
          .execute();
        // Queued, not sent: the outbox sender audits `referral_notice.sent` when it has left.
        await appendAuditEvent(trx, {
          eventKey: `${key}:queued`,
          agencyId: input.agencyId,
          actor: { id: 'system', role: 'system' },
          action: 'referral_notice.queued',
          caseId: input.caseId,
          clientId: input.clientId,
          outcome: 'done',
          workflowId,
          activityId,
          after: {
            referralId: input.referralId,
            recipient: input.providerId,
            channel: input.external ? 'provider_direct' : 'internal',
          },
        });
      });
    },

    /**
     * Renders the closing letter (HTML and PDF, with checksums) and sends it only by a channel the safe-contact
     * rule allows on the client record as it stands now; otherwise it is held for in-person delivery.
     */
    async issueClosureLetter({
      caseId,
      agencyId,
      clientId,
      channel: workflowChannel,
      riskFlags: workflowRiskFlags,
    }: {
      caseId: string;
      /** Absent only in cases started before facts came from the record. */
      agencyId?: string;
      clientId?: string;
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
        const row = await trx.selectFrom('cases').selectAll().where('case_id', '=', caseId).executeTakeFirstOrThrow();
        const facts = agencyId && clientId ? await clientFacts(trx, agencyId, clientId) : undefined;
        const route = facts
          ? letterRoute(facts)
          : workflowChannel
            ? { channel: workflowChannel, heldBecause: null }
            : letterRoute({ riskFlags: workflowRiskFlags, contact: row.contact });
        if (existing) {
          return {
            letterId: existing.letter_id,
            delivery: existing.delivery === 'held_for_in_person' ? 'held_for_in_person' : 'queued',
            channel: existing.channel,
            heldBecause: existing.delivery === 'held_for_in_person' ? route.heldBecause : null,
          };
        }
        const state = row.state!;
        const riskFlags = facts?.riskFlags ?? workflowRiskFlags;
        const agency = await findAgencyPolicy(trx, row.agency_id);
        const policy = withDefaults(agency?.policy);
        const referral = await trx
          .selectFrom('referrals')
          .select(['provider_name', 'provider_contact'])
          .where('case_id', '=', caseId)
          .where('state', 'in', ['accepted', 'first_appointment_scheduled', 'first_appointment_kept', 'no_show'])
          .executeTakeFirst();
        const content = {
          clientName: (facts?.name ?? row.client_name) || 'client',
          agencyName: agency?.agency_name ?? row.agency_id,
          agencyPhone: agency?.agency_phone ?? 'the number on your last appointment card',
          issuedOn: localDate(Date.now(), policy.timeZone ?? DEFAULT_TIME_ZONE),
          lastSessionDate: state.conversation.lastSessionDate,
          locale: policy.locale ?? DEFAULT_LOCALE,
          reason: row.reason,
          referral: referral ? { name: referral.provider_name, contact: referral.provider_contact } : null,
          domesticViolenceResources: riskFlags.includes('domestic_violence'),
          ...(route.channel === 'mail' ? { mailingAddress: facts?.contact.postalAddress ?? null } : {}),
        };
        const html = renderLetterHtml(content);
        const pdf = await renderLetterPdf(content);
        const { channel, heldBecause } = route;
        const delivery = channel ? 'queued' : 'held_for_in_person';
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
              agency_id: row.agency_id,
              kind: 'closure_letter',
              channel,
              recipient: row.client_id,
              // A letter by mail joins a print batch that is rendered from its content.
              payload: JSON.stringify(channel === 'mail' ? { letterId, content } : { letterId }),
            })
            .execute();
        }
        await appendAuditEvent(trx, {
          eventKey: `${caseId}:letter:generated`,
          agencyId: row.agency_id,
          actor: { id: 'system', role: 'system' },
          action: 'letter.generated',
          caseId,
          clientId: row.client_id,
          outcome: 'done',
          outcomeReason: heldBecause,
          workflowId,
          activityId,
          after: { letterId, pdfSha256: sha256(pdf), htmlSha256: sha256(html), delivery, channel, heldBecause },
        });
        return { letterId, delivery, channel, heldBecause };
      });
    },

    /**
     * A task for a person (an escalation, an outreach): created once per key. An escalation goes to a named
     * director: the policy's covering directors in order of its level, else the agency's directors.
     */
    async createTask(input: TaskInput): Promise<void> {
      const row = await findCase(db, input.caseId);
      if (!row) refusal('NotFound', `no case ${input.caseId}`);
      const level = input.kind.startsWith('escalation.')
        ? Number(/:escalation:(\d+):/.exec(input.taskKey)?.[1] ?? 1)
        : null;
      const assigneeId =
        level !== null
          ? await coveringDirector(db, row.agency_id, await policyOf(row.agency_id), level, row.counselor_id)
          : input.assigneeId;
      await db.transaction().execute(async (trx) => {
        const created = await trx
          .insertInto('tasks')
          .values({
            task_key: input.taskKey,
            agency_id: row.agency_id,
            case_id: input.caseId,
            kind: input.kind,
            assignee_role: input.assigneeRole,
            assignee_id: assigneeId,
            detail: input.detail,
            due_at: new Date(),
            level,
          })
          .onConflict((oc) => oc.column('task_key').doNothing())
          .returning(['task_id', 'due_at'])
          .executeTakeFirst();
        // The person it is for hears of it once, in the same transaction (an escalation: the covering director).
        if (created && assigneeId) {
          await notifyAssignee(trx, {
            taskId: created.task_id,
            agencyId: row.agency_id,
            caseId: input.caseId,
            assigneeId,
            dueAt: created.due_at,
            escalated: level !== null,
          });
        }
      });
    },
  });
}

export type Activities = ReturnType<typeof createActivities>;
