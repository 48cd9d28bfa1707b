import { z } from 'zod';
import { auditQuery } from './audit';
import { completeBody, reassignBody, taskQuery } from './tasks';
import { ACTION_ROUTES } from './cases';
import { caseListQuery, casePage, transferListQuery, transferPage } from './lists';
import { REFERENCE_SPECS } from './reference';
import {
  caseView,
  createCaseBody,
  createTransferBody,
  healthView,
  overrideProposalBody,
  policyBody,
  cancelCaseBody,
} from './schemas';
import { tokenBody, userBody } from './users';

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'The same key and body return the first answer; the same key with another body is a 422',
  schema: { type: 'string', maxLength: 200 },
};

interface Operation {
  method: 'get' | 'post' | 'put';
  path: string;
  summary: string;
  actor?: boolean;
  idempotent?: boolean;
  query?: z.ZodObject;
  body?: z.ZodType;
  response?: { status: number; schema: z.ZodType };
  problems: number[];
}

const operations: Operation[] = [
  {
    method: 'get',
    path: '/health',
    summary: 'Whether PostgreSQL and Temporal are reachable',
    response: { status: 200, schema: healthView },
    problems: [503],
  },
  {
    method: 'post',
    path: '/v1/cases',
    summary: "Start one client's termination or transfer case",
    actor: true,
    idempotent: true,
    body: createCaseBody,
    response: { status: 202, schema: caseView },
    problems: [400, 401, 409, 503],
  },
  {
    method: 'get',
    path: '/v1/cases',
    summary:
      "List the agency's cases (a counselor's own), due soonest first, by cursor (limit ≤ 200); audited once per request",
    actor: true,
    query: caseListQuery,
    response: { status: 200, schema: casePage },
    problems: [400, 401, 403],
  },
  {
    method: 'get',
    path: '/v1/cases/{caseId}',
    summary: 'Read a case: where it stands, what it waits for, what blocks closing it (the read is audited)',
    actor: true,
    response: { status: 200, schema: caseView },
    problems: [400, 401, 404, 503],
  },
  {
    method: 'get',
    path: '/v1/cases/{caseId}/letter',
    summary: 'The closing letter as HTML (X-Checksum-SHA256, X-Delivery)',
    actor: true,
    problems: [401, 404],
  },
  {
    method: 'get',
    path: '/v1/cases/{caseId}/letter.pdf',
    summary: 'The closing letter as PDF (X-Checksum-SHA256, X-Delivery)',
    actor: true,
    problems: [401, 404],
  },
  ...ACTION_ROUTES.map((route): Operation => ({
    method: 'post',
    path: `/v1/cases/{caseId}/${route.path.replace(/:(\w+)/g, '{$1}')}`,
    summary: route.summary,
    actor: true,
    body: route.body,
    response: { status: 200, schema: caseView },
    problems: [400, 401, 404, 409, 422, 503],
  })),
  {
    method: 'get',
    path: '/v1/agencies/{agencyId}/policy',
    summary: "The agency's process policy (defaults where unset)",
    actor: true,
    problems: [400, 401],
  },
  {
    method: 'put',
    path: '/v1/agencies/{agencyId}/policy',
    summary: 'Set the agency policy; running cases keep theirs',
    actor: true,
    body: policyBody,
    problems: [400, 401, 403],
  },
  ...REFERENCE_SPECS.flatMap((spec): Operation[] => [
    {
      method: 'put',
      path: `/v1/${spec.kind}/{id}`,
      summary: `Create or replace a ${spec.singular} (answers whether anything changed)`,
      actor: true,
      body: spec.schema,
      problems: [400, 401, 403, 404],
    },
    {
      method: 'get',
      path: `/v1/${spec.kind}/{id}`,
      summary: `Read a ${spec.singular}`,
      actor: true,
      problems: [401, 404],
    },
    {
      method: 'get',
      path: `/v1/${spec.kind}`,
      summary: `List ${spec.kind} by cursor (limit ≤ 500; next is the following page's cursor)`,
      actor: true,
      problems: [400, 401, 403],
    },
  ]),
  {
    method: 'post',
    path: '/v1/transfers',
    summary: "Transfer a relocating counselor's caseload",
    actor: true,
    idempotent: true,
    body: createTransferBody,
    problems: [400, 401, 403, 409, 422, 503],
  },
  {
    method: 'get',
    path: '/v1/transfers',
    summary: 'List open and recently ended transfers, last day soonest first, with case counts by status, by cursor',
    actor: true,
    query: transferListQuery,
    response: { status: 200, schema: transferPage },
    problems: [400, 401, 403],
  },
  {
    method: 'get',
    path: '/v1/transfers/{transferId}',
    summary: 'Where every client of a transfer stands',
    actor: true,
    problems: [401, 403, 404],
  },
  {
    method: 'post',
    path: '/v1/transfers/{transferId}/cancel',
    summary: 'Cancel a transfer and its open cases',
    actor: true,
    body: cancelCaseBody,
    problems: [400, 401, 403, 404, 409],
  },
  {
    method: 'post',
    path: '/v1/transfers/{transferId}/cases/{caseId}/proposal',
    summary: 'A director overrides the proposed receiving clinician',
    actor: true,
    body: overrideProposalBody,
    problems: [400, 401, 403, 404, 422],
  },
  {
    method: 'put',
    path: '/v1/users/{userId}',
    summary: 'Create or update a user of your agency (admin)',
    actor: true,
    body: userBody,
    problems: [400, 401, 403, 404],
  },
  {
    method: 'post',
    path: '/v1/users/{userId}/tokens',
    summary: 'Issue a token (shown once) (admin)',
    actor: true,
    body: tokenBody,
    problems: [400, 401, 403, 404],
  },
  {
    method: 'post',
    path: '/v1/tokens/{tokenId}/revocation',
    summary: 'Revoke a token (admin)',
    actor: true,
    problems: [401, 403, 404],
  },
  {
    method: 'get',
    path: '/v1/audit',
    summary: 'Export the audit trail (compliance, admin): NDJSON or CSV, streamed, with a manifest',
    actor: true,
    query: auditQuery,
    problems: [400, 401, 403],
  },
  {
    method: 'get',
    path: '/v1/audit/verify',
    summary: 'Recompute the hash chain and compare it with the last anchor',
    actor: true,
    problems: [401, 403],
  },
  {
    method: 'get',
    path: '/v1/clients/{clientId}/disclosures',
    summary: 'Accounting of disclosures for a client (42 CFR Part 2 §2.25)',
    actor: true,
    problems: [400, 401, 403],
  },
  {
    method: 'get',
    path: '/v1/tasks',
    summary: 'The work queue: what waits for me or my role (view=mine), or the agency (view=agency), overdue first',
    actor: true,
    query: taskQuery,
    problems: [400, 401, 403],
  },
  {
    method: 'post',
    path: '/v1/tasks/{taskId}/assignment',
    summary: 'A clinical director hands a task to a named person who may do it',
    actor: true,
    body: reassignBody,
    problems: [400, 401, 403, 404, 409, 422],
  },
  {
    method: 'post',
    path: '/v1/tasks/{taskId}/completion',
    summary: 'Mark an outreach task done (waits close by themselves when the case moves on)',
    actor: true,
    body: completeBody,
    problems: [400, 401, 403, 404, 409],
  },
  {
    method: 'get',
    path: '/v1/mail-batches/{batchDate}',
    summary: "The day's closure letters to print and mail (staff, directors)",
    actor: true,
    problems: [400, 401, 403],
  },
  {
    method: 'get',
    path: '/v1/mail-batches/{batchDate}/letters.pdf',
    summary: "The day's letters to mail as one PDF (audited)",
    actor: true,
    problems: [400, 401, 403],
  },
  {
    method: 'post',
    path: '/v1/mail-batches/{batchDate}/mailed',
    summary: "Record that the day's batch was mailed: each letter in it is then sent",
    actor: true,
    problems: [400, 401, 403],
  },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', problems: [] },
];

const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    rule: { type: 'string' },
    errors: {
      type: 'array',
      items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
    },
  },
};

const jsonSchemaOptions = { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' } as const;

/** A named schema (one with a meta id) becomes a reference into components; others are inlined. */
function schemaOf(schema: z.ZodType): unknown {
  const id = schema.meta()?.id;
  if (id) return { $ref: `#/components/schemas/${id}` };
  const json = z.toJSONSchema(schema, jsonSchemaOptions) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

function namedSchemas(): Record<string, unknown> {
  const { schemas } = z.toJSONSchema(z.globalRegistry, {
    ...jsonSchemaOptions,
    uri: (id) => `#/components/schemas/${id}`,
  });
  for (const schema of Object.values(schemas)) delete (schema as Record<string, unknown>).$schema;
  return schemas;
}

/** The OpenAPI 3.1 document, generated from the same zod schemas the handlers parse with. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const pathParams = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    const responses: Record<string, unknown> = {};
    if (op.response)
      responses[op.response.status] = {
        description: 'OK',
        content: { 'application/json': { schema: schemaOf(op.response.schema) } },
      };
    for (const status of op.problems)
      responses[status] = {
        description: 'Problem',
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      };
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      parameters: [
        ...pathParams,
        ...Object.entries(op.query?.shape ?? {}).map(([name, schema]) => ({
          name,
          in: 'query',
          required: false,
          schema: schemaOf(schema as z.ZodType),
        })),
        ...(op.idempotent ? [IDEMPOTENCY_KEY] : []),
      ],
      ...(op.actor ? { security: [{ bearer: [] }] } : { security: [] }),
      ...(op.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(op.body) } } } }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'handoff',
      version: '0.1.0',
      description: 'Ethical termination and transfer of counseling relationships, run as durable workflows.',
    },
    paths,
    components: {
      schemas: { ...namedSchemas(), Problem: problemSchema },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API token (npm run token, or an admin)' },
      },
    },
    security: [{ bearer: [] }],
  };
}
