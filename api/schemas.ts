import { z } from 'zod';
import { CASE_KINDS, CASE_REASONS, CASE_STATUSES, ROLES } from '../domain/case';
import { CLIENT_CHOICES, CONTACT_CHANNELS, RISK_FLAGS, STEPS } from '../domain/process';

const id = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits, . _ : - only');
const isoDate = z.iso.date();
const text = (max: number) => z.string().trim().min(1).max(max);

/** Who is acting. Replaced by bearer tokens once users exist; recorded with every action. */
export const actorHeaders = z.object({
  'x-actor-id': id,
  'x-actor-role': z.enum(ROLES),
});

export const caseIdParams = z.strictObject({ caseId: z.uuid() });
export const referralParams = z.strictObject({ caseId: z.uuid(), referralId: z.uuid() });
export const consentParams = z.strictObject({ caseId: z.uuid(), consentId: z.uuid() });
export const agencyParams = z.strictObject({ agencyId: id });

const contactPreferences = z.strictObject({
  channels: z.array(z.strictObject({ channel: z.enum(CONTACT_CHANNELS), safe: z.boolean() })).max(10),
  noContactAtHome: z.boolean(),
});

const RELOCATION_REASONS = new Set(['counselor_relocation', 'counselor_departure']);

export const createCaseBody = z
  .strictObject({
    caseId: z.uuid().optional().describe('Chosen by the caller to make the start idempotent; generated if absent'),
    agencyId: id,
    clientId: id,
    clientName: text(200).describe('How the closing letter addresses the client'),
    counselorId: id,
    kind: z.enum(CASE_KINDS),
    reason: z.enum(CASE_REASONS),
    lastDay: isoDate.optional().describe("The counselor's last day; required for a relocation or departure"),
    riskFlags: z.array(z.enum(RISK_FLAGS)).max(RISK_FLAGS.length).default([]),
    contact: contactPreferences.default({ channels: [], noContactAtHome: false }),
    hasSubstanceUseRecords: z.boolean().default(false),
  })
  .superRefine((body, ctx) => {
    if (RELOCATION_REASONS.has(body.reason) && !body.lastDay) {
      ctx.addIssue({
        code: 'custom',
        path: ['lastDay'],
        message: "a relocation or departure needs the counselor's last day",
      });
    }
  })
  .meta({ id: 'CreateCase' });
export type CreateCaseBody = z.infer<typeof createCaseBody>;

export const cancelCaseBody = z.strictObject({ reason: text(2000) }).meta({ id: 'CancelCase' });
export const reviewBody = z
  .strictObject({ decision: z.enum(['approve', 'reject', 'send_back']), rationale: text(2000) })
  .meta({ id: 'ReviewDecision' });
export const reviseBody = z.strictObject({ rationale: text(2000) }).meta({ id: 'ReviseDecision' });
export const safetyPlanBody = z
  .strictObject({
    documentRef: text(500).describe('Where the plan is documented (the record system); not its content'),
  })
  .meta({ id: 'SafetyPlan' });
export const emptyBody = z.strictObject({}).meta({ id: 'Empty' });
export const riskFlagBody = z.strictObject({ flag: z.enum(RISK_FLAGS) }).meta({ id: 'RiskFlag' });
export const conversationBody = z
  .strictObject({ heldOn: isoDate, clientChoice: z.enum(CLIENT_CHOICES), lastSessionDate: isoDate })
  .meta({ id: 'Conversation' });
export const outreachBody = z
  .strictObject({ attemptedOn: isoDate, channel: z.enum(CONTACT_CHANNELS) })
  .meta({ id: 'OutreachAttempt' });
export const waiveConversationBody = z
  .strictObject({ basis: z.enum(['client_initiated', 'clinician_safety']), rationale: text(2000) })
  .meta({ id: 'WaiveConversation' });
export const proposeReferralBody = z
  .strictObject({
    candidates: z
      .array(
        z.strictObject({
          providerId: id,
          name: text(200),
          external: z.boolean().describe('Outside the agency: a release naming the provider is required'),
          contact: text(300),
        }),
      )
      .min(1)
      .max(20),
  })
  .meta({ id: 'ProposeReferral' });
export const referralResponseBody = z
  .strictObject({
    response: z.enum(['accepted', 'declined']),
    declinedBy: z.enum(['provider', 'client']).optional(),
    declineReason: text(500).optional(),
  })
  .meta({ id: 'ReferralResponse' });
export const appointmentBody = z
  .strictObject({ scheduledFor: z.iso.datetime({ offset: true }) })
  .meta({ id: 'Appointment' });
export const appointmentOutcomeBody = z
  .strictObject({ outcome: z.enum(['kept', 'no_show']) })
  .meta({ id: 'AppointmentOutcome' });
export const withdrawReferralBody = z.strictObject({ reason: text(500) }).meta({ id: 'WithdrawReferral' });
export const consentBody = z
  .strictObject({
    consentId: z.uuid().optional(),
    recipientProviderId: id,
    disclosed: text(500).describe('What may be shared'),
    purpose: text(500),
    expiresOn: isoDate,
    coversSubstanceUseRecords: z.boolean(),
    revocable: z.literal(true).describe('The client was told of the right to revoke'),
    signedOn: isoDate,
  })
  .meta({ id: 'Consent' });
export const engagementBody = z.strictObject({ engaged: z.boolean() }).meta({ id: 'Engagement' });

export const policyBody = z
  .strictObject({
    agencyName: text(200),
    agencyPhone: text(50),
    policy: z
      .strictObject({
        reviewSlaHours: z
          .number()
          .int()
          .min(1)
          .max(24 * 60),
        outreachAttempts: z.number().int().min(1).max(10),
        outreachSpacingDays: z.number().int().min(0).max(60),
        noticeDays: z.number().int().min(0).max(180),
        noticeWarningDays: z.number().int().min(0).max(60),
        referralSlaDays: z.number().int().min(1).max(90),
        rerouteLimit: z.number().int().min(0).max(20),
        followUpOffsetsDays: z.array(z.number().int().min(1).max(365)).min(1).max(12),
      })
      .partial(),
  })
  .meta({ id: 'AgencyPolicy' });

const blocker = z.object({ rule: z.string(), detail: z.string() });

export const caseView = z
  .object({
    caseId: z.uuid(),
    workflowId: z.string(),
    status: z.enum(CASE_STATUSES),
    step: z.enum(STEPS),
    waitingFor: z.array(z.string()),
    blockers: z.array(blocker),
    agencyId: z.string().optional(),
    clientId: z.string().optional(),
    counselorId: z.string().optional(),
    kind: z.enum(CASE_KINDS).optional(),
    reason: z.enum(CASE_REASONS).optional(),
    lastDay: z.string().nullable().optional(),
    noticeDue: z.string().nullable().optional(),
    process: z
      .unknown()
      .optional()
      .describe('The full process state: review, risk, conversation, referrals, consents, letter, follow-up'),
    createdAt: z.string().optional(),
    updatedAt: z.string().optional(),
  })
  .meta({ id: 'Case' });
export type CaseView = z.infer<typeof caseView>;

export const healthView = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    postgres: z.enum(['ok', 'unavailable']),
    temporal: z.enum(['ok', 'unavailable']),
  })
  .meta({ id: 'Health' });
