import { z } from 'zod';
import { CASE_KINDS, CASE_REASONS, CASE_STATUSES, ROLES } from '../domain/case';

const id = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits, . _ : - only');

/** Who is acting. Replaced by bearer tokens once users exist; recorded with every action. */
export const actorHeaders = z.object({
  'x-actor-id': id,
  'x-actor-role': z.enum(ROLES),
});

export const caseIdParams = z.strictObject({ caseId: z.uuid() });

export const createCaseBody = z
  .strictObject({
    caseId: z.uuid().optional().describe('Chosen by the caller to make the start idempotent; generated if absent'),
    agencyId: id,
    clientId: id,
    counselorId: id,
    kind: z.enum(CASE_KINDS),
    reason: z.enum(CASE_REASONS),
  })
  .meta({ id: 'CreateCase' });
export type CreateCaseBody = z.infer<typeof createCaseBody>;

export const cancelCaseBody = z.strictObject({ reason: z.string().trim().min(1).max(2000) }).meta({ id: 'CancelCase' });

export const caseView = z
  .object({
    caseId: z.uuid(),
    workflowId: z.string(),
    status: z.enum(CASE_STATUSES),
    step: z.string(),
    agencyId: z.string().optional(),
    clientId: z.string().optional(),
    counselorId: z.string().optional(),
    kind: z.enum(CASE_KINDS).optional(),
    reason: z.enum(CASE_REASONS).optional(),
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
