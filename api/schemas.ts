import { z } from 'zod';
import { CASE_KINDS, CASE_REASONS, CASE_STATUSES } from '../domain/case';
import { CLIENT_CHOICES, CONTACT_CHANNELS, RISK_FLAGS, STEPS } from '../domain/process';
import { isTimeZone } from '../domain/time';

/** An id: what the path, the body and the CSV import all take (no space, so nothing to trim). */
export const id = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits, . _ : - only');
const isoDate = z.iso.date();

/**
 * The IANA time zones an agency may name: this runtime's canonical zones, UTC and the fixed Etc/GMT offsets. A list,
 * not a check of whatever Intl takes, so the OpenAPI document can give it and nothing outside it passes.
 */
const TIME_ZONES = [
  ...new Set([
    'UTC',
    'Etc/UTC',
    'Etc/GMT',
    ...Intl.supportedValuesOf('timeZone'),
    ...Array.from({ length: 27 }, (_, i) => i - 14)
      .filter((offset) => offset !== 0)
      .map((offset) => `Etc/GMT${offset > 0 ? '+' : ''}${offset}`),
  ]),
].filter(isTimeZone) as [string, ...string[]];

/** Text fields, so the OpenAPI document can say in one pattern what their checks say in three. */
export const textFields = z.registry<{ maxChars: number }>();

// Only what PostgreSQL can store: no NUL (nor the other control characters, which nothing a person types needs),
// and no lone UTF-16 surrogate, which a jsonb column refuses and a text column silently turns into U+FFFD.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NO_CONTROL = /^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$/;
const NO_LONE_SURROGATE = /^\P{Cs}*$/u;

/**
 * A person's text: at most `max` characters (code points, as PostgreSQL counts them), something besides white
 * space, stored trimmed.
 */
export const text = (max: number) => {
  const schema = z
    .string()
    .regex(NO_CONTROL, 'control characters are not allowed')
    .regex(NO_LONE_SURROGATE, 'not valid Unicode: a lone surrogate is not allowed')
    .refine((value) => [...value].length <= max, `Too big: expected string to have <=${max} characters`)
    .trim()
    .min(1);
  schema.register(textFields, { maxChars: max });
  return schema;
};

/**
 * The same checks as `text`, as one pattern every JSON Schema engine reads alike: no control character, and one
 * character besides the white space trim() strips. A lone surrogate is no Unicode text at all (UTF-8 cannot carry
 * one; only a JSON escape can), so the document says it in words: engines on UTF-8 strings refuse a pattern naming it.
 */
const ALLOWED = String.raw`[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]`;
const VISIBLE = String.raw`[^\u0000-\u0020\u007f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]`;
export const TEXT_PATTERN = `^${ALLOWED}*${VISIBLE}${ALLOWED}*$`;
export const TEXT_DESCRIPTION =
  'Text: no control characters and no lone surrogate (\\uD800-\\uDFFF unpaired); stored trimmed';

/**
 * An address mail can go to: zod's email shape, within the lengths RFC 5321 and RFC 1035 allow (a local part of at
 * most 64 octets, domain labels of at most 63, none ending in a hyphen), as the document's `format: email` says.
 */
export const email = z
  .email()
  .max(254)
  .refine((address) => {
    const at = address.lastIndexOf('@');
    const labels = address.slice(at + 1).split('.');
    return at <= 64 && labels.every((label) => label.length <= 63 && !label.endsWith('-'));
  }, 'not an address mail can be sent to (a local part of at most 64 characters, domain labels of at most 63)');

export const caseIdParams = z.strictObject({ caseId: z.uuid() });
export const referralParams = z.strictObject({ caseId: z.uuid(), referralId: z.uuid() });
export const consentParams = z.strictObject({ caseId: z.uuid(), consentId: z.uuid() });
export const agencyParams = z.strictObject({ agencyId: id });

const contactPreferences = z.strictObject({
  channels: z.array(z.strictObject({ channel: z.enum(CONTACT_CHANNELS), safe: z.boolean() })).max(10),
  noContactAtHome: z.boolean(),
  email: email.nullish().describe('Where a closure letter by email goes'),
  postalAddress: text(500).nullish().describe('Where a closure letter by mail goes'),
});

const RELOCATION_REASONS = new Set(['counselor_relocation', 'counselor_departure']);

const candidate = z.strictObject({
  providerId: id,
  name: text(200),
  external: z.boolean().describe('Outside the agency: a release naming the provider is required'),
  contact: text(300),
});

/**
 * A case names the client of the caller's agency; the client's counselor, risk flags, contact preferences and
 * substance-use records are read from the agency's client record, never from the request.
 */
export const createCaseBody = z
  .strictObject({
    clientId: id.describe("A client of the caller's agency (PUT /v1/clients/{id} first)"),
    kind: z.enum(CASE_KINDS),
    reason: z.enum(CASE_REASONS),
    lastDay: isoDate.optional().describe("The counselor's last day; required for a relocation or departure"),
    proposedReceivers: z
      .array(candidate)
      .max(20)
      .optional()
      .describe('Receiving clinicians or providers proposed at the start, in order of preference'),
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
  .meta({
    id: 'CreateCase',
    // The superRefine above, for the document: a relocation or departure names the last day.
    if: { properties: { reason: { enum: [...RELOCATION_REASONS] } }, required: ['reason'] },
    then: { required: ['lastDay'] },
  });
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
export type RiskFlagBody = z.infer<typeof riskFlagBody>;
export const conversationBody = z
  .strictObject({ heldOn: isoDate, clientChoice: z.enum(CLIENT_CHOICES), lastSessionDate: isoDate })
  .meta({ id: 'Conversation' });
export const outreachBody = z
  .strictObject({ attemptedOn: isoDate, channel: z.enum(CONTACT_CHANNELS) })
  .meta({ id: 'OutreachAttempt' });
export type OutreachBody = z.infer<typeof outreachBody>;
export const waiveConversationBody = z
  .strictObject({ basis: z.enum(['client_initiated', 'clinician_safety']), rationale: text(2000) })
  .meta({ id: 'WaiveConversation' });
export const proposeReferralBody = z
  .strictObject({ candidates: z.array(candidate).min(1).max(20) })
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
        timeZone: z
          .enum(TIME_ZONES, 'not an IANA time zone (for example America/Chicago)')
          .describe("The agency's time zone: today, deadlines and expiries are its dates"),
        locale: z
          .string()
          .max(35)
          .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'a BCP 47 language tag such as en-US')
          .describe('How letters write dates'),
        coveringDirectors: z
          .array(id)
          .max(20)
          .describe('Directors who take escalations, in order: level 1 the first, each later level the next'),
        caringContactDays: z
          .array(z.number().int().min(1).max(730))
          .max(24)
          .describe('Caring contacts after closing for a client who carried a suicide-risk flag (days)'),
      })
      .partial(),
  })
  .meta({ id: 'AgencyPolicy' });

const blocker = z.object({ rule: z.string(), detail: z.string(), due: z.string().optional() });

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
    worker: z.enum(['ok', 'unavailable']).optional().describe('Whether a worker polls the task queue'),
  })
  .meta({ id: 'Health' });

const specialty = z
  .string()
  .trim()
  .min(1)
  .max(60)
  .regex(/^[a-z0-9_]+$/, 'lower-case letters, digits and _ only');

/** A client, minimum necessary: who they are, who they see, how to reach them safely, what care they need. */
export const clientBody = z
  .strictObject({
    agencyId: id.optional().describe("The caller's agency (the only one a record can be written in)"),
    name: text(200),
    counselorId: id,
    active: z.boolean(),
    riskFlags: z.array(z.enum(RISK_FLAGS)).max(RISK_FLAGS.length),
    contact: contactPreferences,
    hasSubstanceUseRecords: z.boolean(),
    needs: z.array(specialty).max(20).describe('Specialties the receiving clinician must have'),
  })
  .meta({ id: 'Client' });
export type ClientBody = z.infer<typeof clientBody>;

export const clinicianBody = z
  .strictObject({
    agencyId: id.optional().describe("The caller's agency (the only one a record can be written in)"),
    name: text(200),
    capacity: z.number().int().min(0).max(1000).describe('The most clients this clinician may carry'),
    specialties: z.array(specialty).max(40),
    active: z.boolean(),
    contact: text(300),
  })
  .meta({ id: 'Clinician' });
export type ClinicianBody = z.infer<typeof clinicianBody>;

export const providerBody = z
  .strictObject({ name: text(200), contact: text(300), specialties: z.array(specialty).max(40) })
  .meta({ id: 'Provider' });
export type ProviderBody = z.infer<typeof providerBody>;

export const referenceIdParams = z.strictObject({ id });

export const listQuery = z.strictObject({
  cursor: id.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  counselorId: id.optional(),
});

export const createTransferBody = z
  .strictObject({
    counselorId: id,
    lastDay: isoDate,
    reason: z.enum(['counselor_relocation', 'counselor_departure']).default('counselor_relocation'),
    clientIds: z.array(id).min(1).max(20_000).optional().describe('Only these clients; all active clients if absent'),
  })
  .meta({ id: 'CreateTransfer' });
export const transferIdParams = z.strictObject({ transferId: z.uuid() });
export const overrideProposalBody = z.strictObject({ clinicianId: id }).meta({ id: 'OverrideProposal' });
export const transferCaseParams = z.strictObject({ transferId: z.uuid(), caseId: z.uuid() });
