import { z } from 'zod';
import { ROLES } from '../domain/case';
import { RISK_FLAGS } from '../domain/process';

/*
 * What the routes answer, for the OpenAPI document (the request side is in schemas.ts and beside each route).
 * Strict objects: a field the document does not name is a contract fault the contract test reports.
 */

const instant = z.iso.datetime({ offset: true });
const date = z.iso.date();
const count = z.number().int().min(0);

export const policyView = z
  .strictObject({
    agencyId: z.string(),
    agencyName: z.string().nullable(),
    agencyPhone: z.string().nullable(),
    policy: z.strictObject({
      reviewSlaHours: count,
      outreachAttempts: count,
      outreachSpacingDays: count,
      noticeDays: count,
      noticeWarningDays: count,
      referralSlaDays: count,
      rerouteLimit: count,
      followUpOffsetsDays: z.array(count),
      timeZone: z.string().optional(),
      locale: z.string().optional(),
      coveringDirectors: z.array(z.string()).optional(),
      caringContactDays: z.array(count).optional(),
    }),
  })
  .meta({ id: 'AgencyPolicyView' });

const contactView = z.strictObject({
  channels: z.array(z.strictObject({ channel: z.string(), safe: z.boolean() })),
  noContactAtHome: z.boolean(),
  email: z.string().nullish(),
  postalAddress: z.string().nullish(),
});

export const clientView = z
  .strictObject({
    clientId: z.string(),
    agencyId: z.string(),
    name: z.string(),
    counselorId: z.string(),
    active: z.boolean(),
    riskFlags: z.array(z.enum(RISK_FLAGS)),
    contact: contactView,
    hasSubstanceUseRecords: z.boolean(),
    needs: z.array(z.string()),
  })
  .meta({ id: 'ClientView' });

export const clinicianView = z
  .strictObject({
    clinicianId: z.string(),
    agencyId: z.string(),
    name: z.string(),
    capacity: count,
    specialties: z.array(z.string()),
    active: z.boolean(),
    contact: z.string(),
  })
  .meta({ id: 'ClinicianView' });

export const providerView = z
  .strictObject({ providerId: z.string(), name: z.string(), contact: z.string(), specialties: z.array(z.string()) })
  .meta({ id: 'ProviderView' });

const outcome = z.enum(['inserted', 'updated', 'unchanged']).describe('Whether the PUT changed anything');

/** Per kind of reference record: what a read, a write and a page answer. */
export const REFERENCE_VIEWS = {
  clients: {
    read: clientView,
    written: clientView
      .extend({ outcome, openCasesTold: count.describe("The client's open cases that re-read the record") })
      .meta({ id: 'ClientWritten' }),
    page: z.strictObject({ items: z.array(clientView), next: z.string().nullable() }).meta({ id: 'ClientPage' }),
  },
  clinicians: {
    read: clinicianView,
    written: clinicianView.extend({ outcome }).meta({ id: 'ClinicianWritten' }),
    page: z.strictObject({ items: z.array(clinicianView), next: z.string().nullable() }).meta({ id: 'ClinicianPage' }),
  },
  providers: {
    read: providerView,
    written: providerView.extend({ outcome }).meta({ id: 'ProviderWritten' }),
    page: z.strictObject({ items: z.array(providerView), next: z.string().nullable() }).meta({ id: 'ProviderPage' }),
  },
} as const;

export const transferStarted = z
  .strictObject({ transferId: z.uuid(), status: z.literal('opening'), expected: count })
  .meta({ id: 'TransferStarted' });

const caseIds = z.array(z.uuid());

export const transferProgressView = z
  .strictObject({
    transferId: z.uuid(),
    counselorId: z.string(),
    lastDay: date,
    status: z.enum(['opening', 'open', 'cancelled', 'finished', 'failed']),
    expected: count,
    started: count,
    cases: z.number().int(),
    byStatus: z.record(z.string(), count),
    openBySteps: z.record(z.string(), count),
    informed: z.strictObject({ inTime: count, late: count, notYet: count, everyClientInTime: z.boolean() }),
    atRiskOfMissingNotice: caseIds,
    escalated: caseIds,
    stuck: caseIds,
    withoutProposedReceiver: caseIds,
    done: count,
    listsCappedAt: count,
  })
  .meta({ id: 'TransferProgress' });

export const transferCancelled = z
  .strictObject({ transferId: z.uuid(), status: z.string().describe("The transfer's phase after the cancel") })
  .meta({ id: 'TransferCancelled' });

export const proposalOverridden = z
  .strictObject({ caseId: z.uuid(), clinicianId: z.string(), step: z.string(), waitingFor: z.array(z.string()) })
  .meta({ id: 'ProposalOverridden' });

export const userView = z
  .strictObject({ userId: z.string(), role: z.enum(ROLES), agencyId: z.string(), name: z.string() })
  .meta({ id: 'UserView' });

export const meView = z
  .strictObject({
    userId: z.string(),
    name: z.string(),
    role: z.enum(ROLES),
    agencyId: z.string(),
    agencyName: z.string().nullable(),
    permissions: z.array(z.string()).describe('What the role matrix lets this user do'),
  })
  .meta({ id: 'Me' });

export const timelineView = z
  .strictObject({
    caseId: z.uuid(),
    events: z.array(
      z.strictObject({
        seq: z.string(),
        at: instant,
        actorId: z.string(),
        actorRole: z.string(),
        action: z.string(),
        outcome: z.enum(['done', 'refused', 'failed']),
        reason: z.string().nullable(),
      }),
    ),
    truncated: z.boolean().describe('Older events than these exist; the audit export has them all'),
  })
  .meta({ id: 'CaseTimeline' });

export const tokenIssued = z
  .strictObject({ tokenId: z.uuid(), token: z.string().describe('Shown this once'), expiresAt: instant })
  .meta({ id: 'TokenIssued' });

export const authConfigView = z
  .strictObject({
    oidc: z.boolean().describe("Sign-in through the agency's identity provider (/auth/oidc/login)"),
    devTokens: z.boolean().describe('Whether the web page offers pasting an API token (not in production)'),
  })
  .meta({ id: 'AuthConfig' });

export const tokenRevoked = z
  .strictObject({ tokenId: z.uuid(), revoked: z.literal(true) })
  .meta({ id: 'TokenRevoked' });

export const verifyView = z
  .strictObject({
    ok: z.boolean(),
    full: z.boolean().describe('Checked from the first event, not from the last checkpoint'),
    from: z.string().describe('The position checked from (0: the first event)'),
    checked: count,
    headPosition: z.string().nullable(),
    headHash: z.string().nullable(),
    firstBroken: z.strictObject({ position: z.string(), seq: z.string().nullable(), reason: z.string() }).nullable(),
    pending: count.describe('Events written and not chained yet'),
    unchained: count.nullable().describe('With full: events in no chain and not queued for one'),
    anchor: z.strictObject({ at: z.string(), matches: z.boolean() }).nullable(),
  })
  .meta({ id: 'AuditVerification' });

export const disclosuresView = z
  .strictObject({
    clientId: z.string(),
    since: date,
    disclosures: z.array(
      z.strictObject({
        disclosedAt: instant,
        caseId: z.uuid(),
        recipient: z.string(),
        disclosed: z.string(),
        substanceUseRecords: z.boolean(),
        redisclosureNotice: z.string().nullable(),
        consent: z.strictObject({
          consentId: z.uuid(),
          purpose: z.string().nullable(),
          signedOn: z.string().nullable(),
          expiresOn: z.string().nullable(),
          revokedAt: z.string().nullable(),
        }),
      }),
    ),
  })
  .meta({ id: 'Disclosures' });

export const taskPage = z
  .strictObject({
    items: z.array(
      z.strictObject({
        taskId: z.uuid(),
        caseId: z.uuid(),
        clientId: z.string(),
        kind: z.string(),
        assignee: z.strictObject({ role: z.string(), userId: z.string().nullable() }),
        state: z.enum(['open', 'done', 'cancelled']),
        detail: z.string(),
        dueAt: instant.nullable(),
        overdue: z.boolean(),
        createdAt: instant,
        closedAt: instant.nullable(),
        closedBy: z.string().nullable(),
        case: z.string(),
      }),
    ),
    next: z.string().nullable(),
  })
  .meta({ id: 'TaskPage' });

export const taskAssigned = z
  .strictObject({ taskId: z.uuid(), assignee: z.strictObject({ role: z.enum(ROLES), userId: z.string() }) })
  .meta({ id: 'TaskAssigned' });

export const taskCompleted = z
  .strictObject({ taskId: z.uuid(), state: z.literal('done') })
  .meta({ id: 'TaskCompleted' });

export const mailBatchView = z
  .strictObject({
    batchDate: date,
    letters: z.array(
      z.strictObject({ caseId: z.uuid(), letterId: z.string(), addedAt: instant, mailedAt: instant.nullable() }),
    ),
  })
  .meta({ id: 'MailBatch' });

export const mailBatchMailed = z
  .strictObject({ batchDate: date, mailed: z.array(z.string()).describe('What was marked sent now') })
  .meta({ id: 'MailBatchMailed' });
