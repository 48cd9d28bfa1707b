import { z } from 'zod';
import { ROLES, type Role } from '../domain/case';
import { PERMISSIONS } from '../domain/roles';
import { auditQuery, clientParams, disclosuresQuery, verifyQuery } from './audit';
import { ACTION_ROUTES } from './cases';
import { codecPayloads, namespaceHeader } from './codec';
import { IDEMPOTENCY_KEY_PATTERN } from './idempotency';
import { caseListQuery, casePage, transferListQuery, transferPage } from './lists';
import { mailBatchParams } from './mail';
import { TITLES } from './problem';
import { REFERENCE_PERMISSIONS, REFERENCE_SPECS } from './reference';
import {
  TEXT_DESCRIPTION,
  TEXT_PATTERN,
  agencyParams,
  cancelCaseBody,
  caseIdParams,
  caseView,
  createCaseBody,
  createTransferBody,
  healthView,
  listQuery,
  overrideProposalBody,
  policyBody,
  referenceIdParams,
  textFields,
  transferCaseParams,
  transferIdParams,
} from './schemas';
import { completeBody, reassignBody, taskIdParams, taskQuery } from './tasks';
import { tokenBody, tokenParams, userBody, userParams } from './users';
import {
  REFERENCE_VIEWS,
  authConfigView,
  disclosuresView,
  mailBatchMailed,
  mailBatchView,
  meView,
  timelineView,
  policyView,
  proposalOverridden,
  taskAssigned,
  taskCompleted,
  taskPage,
  tokenIssued,
  tokenRevoked,
  transferCancelled,
  transferProgressView,
  transferStarted,
  userView,
  verifyView,
} from './views';

/** What a route answers when it succeeds: its status, body (JSON unless said otherwise) and headers. */
interface Success {
  status: number;
  description: string;
  schema?: z.ZodType;
  /** Media types other than JSON, each with the schema of its body. */
  media?: Record<string, Record<string, unknown>>;
  headers?: Record<string, { description: string; schema: Record<string, unknown>; required?: boolean }>;
}

interface Operation {
  method: 'get' | 'post' | 'put';
  path: string;
  summary: string;
  /**
   * Who may call it: the roles of a permission (anyone else is a 403), every signed-in user ('signed-in'), or
   * nobody needs to sign in ('public'; /metrics takes its own token).
   */
  access: readonly Role[] | 'signed-in' | 'public' | 'metrics';
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** Optional request headers it reads. */
  headers?: z.ZodObject;
  body?: z.ZodType;
  /** Honours Idempotency-Key: 'start' replays the first answer (409 while in progress, 422 for another body). */
  idempotency?: 'start' | 'update';
  responses: Success[];
  /** What else it can answer, besides the statuses every route of its kind can (see `problemStatuses`). */
  problems: number[];
}

const LOCATION = {
  Location: { description: 'Where the new resource is read', schema: { type: 'string' }, required: true },
};
const CHECKSUM = {
  'X-Checksum-SHA256': {
    description: 'The SHA-256 stored when the letter was issued',
    schema: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    required: true,
  },
  'X-Delivery': { description: 'How the letter reaches the client', schema: { type: 'string' }, required: true },
};
const json = (status: number, schema: z.ZodType, description = 'OK'): Success => ({ status, schema, description });
const pdf: Success['media'] = { 'application/pdf': { type: 'string', contentMediaType: 'application/pdf' } };

const operations: Operation[] = [
  {
    method: 'get',
    path: '/health',
    summary: 'Whether PostgreSQL, Temporal and a worker are there; 503 names what is down',
    access: 'public',
    responses: [json(200, healthView), json(503, healthView, 'Something the service needs is down')],
    problems: [],
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics, for the holder of METRICS_TOKEN (404 when none is set)',
    access: 'metrics',
    responses: [
      {
        status: 200,
        description: 'The Prometheus text format',
        media: { 'text/plain': { type: 'string' } },
      },
    ],
    problems: [401, 404],
  },
  {
    method: 'get',
    path: '/auth/config',
    summary: "Which sign-ins this API offers: the agency's identity provider, pasted API tokens",
    access: 'public',
    responses: [json(200, authConfigView)],
    problems: [],
  },
  {
    method: 'post',
    path: '/auth/sign-out',
    summary: 'Sign out: revokes the calling token if sign-in minted it (an API token is left alone)',
    access: 'signed-in',
    responses: [{ status: 204, description: 'Signed out' }],
    problems: [],
  },
  {
    method: 'post',
    path: '/v1/cases',
    summary: "Start one client's termination or transfer case",
    access: PERMISSIONS.startCase,
    idempotency: 'start',
    body: createCaseBody,
    responses: [
      { ...json(202, caseView, 'Started: the case opens once the worker has read the record'), headers: LOCATION },
    ],
    problems: [409, 422],
  },
  {
    method: 'get',
    path: '/v1/cases',
    summary:
      "List the agency's cases (a counselor's own), due soonest first, by cursor (limit ≤ 200); audited once per request",
    access: PERMISSIONS.readCase,
    query: caseListQuery,
    responses: [json(200, casePage)],
    problems: [],
  },
  {
    method: 'get',
    path: '/v1/cases/{caseId}',
    summary: 'Read a case: where it stands, what it waits for, what blocks closing it (the read is audited)',
    access: PERMISSIONS.readCase,
    params: caseIdParams,
    responses: [json(200, caseView)],
    problems: [404],
  },
  {
    method: 'get',
    path: '/v1/cases/{caseId}/timeline',
    summary: 'Every step of a case from the audit trail: who, role, what, when, outcome (the read is audited)',
    access: PERMISSIONS.readCase,
    params: caseIdParams,
    responses: [json(200, timelineView)],
    problems: [404],
  },
  {
    method: 'get',
    path: '/v1/cases/{caseId}/letter',
    summary: 'The closing letter as HTML (the read is audited)',
    access: PERMISSIONS.readCase,
    params: caseIdParams,
    responses: [
      { status: 200, description: 'The letter', media: { 'text/html': { type: 'string' } }, headers: CHECKSUM },
    ],
    problems: [404],
  },
  {
    method: 'get',
    path: '/v1/cases/{caseId}/letter.pdf',
    summary: 'The closing letter as PDF (the read is audited)',
    access: PERMISSIONS.readCase,
    params: caseIdParams,
    responses: [{ status: 200, description: 'The letter', media: pdf, headers: CHECKSUM }],
    problems: [404],
  },
  ...ACTION_ROUTES.map((route): Operation => ({
    method: 'post',
    path: `/v1/cases/{caseId}/${route.path.replace(/:(\w+)/g, '{$1}')}`,
    summary: route.summary,
    access: PERMISSIONS[route.permission],
    params: route.params,
    idempotency: 'update',
    body: route.body,
    responses: [json(200, caseView, 'Where the case now stands')],
    problems: [404, 409, 422],
  })),
  {
    method: 'get',
    path: '/v1/agencies/{agencyId}/policy',
    summary: "The agency's process policy (defaults where unset); another agency is a 404",
    access: 'signed-in',
    params: agencyParams,
    responses: [json(200, policyView)],
    problems: [404],
  },
  {
    method: 'put',
    path: '/v1/agencies/{agencyId}/policy',
    summary: 'Set the agency policy; running cases keep theirs',
    access: PERMISSIONS.setPolicy,
    params: agencyParams,
    body: policyBody,
    responses: [json(200, policyView)],
    problems: [404],
  },
  ...REFERENCE_SPECS.flatMap((spec): Operation[] => {
    const views = REFERENCE_VIEWS[spec.kind];
    return [
      {
        method: 'put',
        path: `/v1/${spec.kind}/{id}`,
        summary: `Create or replace a ${spec.singular} (answers whether anything changed)`,
        access: PERMISSIONS[REFERENCE_PERMISSIONS[spec.kind]],
        params: referenceIdParams,
        body: spec.schema,
        responses: [json(200, views.written, 'Replaced, or unchanged'), json(201, views.written, 'Created')],
        problems: [],
      },
      {
        method: 'get',
        path: `/v1/${spec.kind}/{id}`,
        summary: `Read a ${spec.singular}`,
        access: 'signed-in',
        params: referenceIdParams,
        responses: [json(200, views.read)],
        problems: [404],
      },
      {
        method: 'get',
        path: `/v1/${spec.kind}`,
        summary: `List ${spec.kind} by cursor (limit ≤ 500; next is the following page's cursor)`,
        access: spec.kind === 'clients' ? PERMISSIONS.listClients : 'signed-in',
        query: listQuery,
        responses: [json(200, views.page)],
        problems: [],
      },
    ];
  }),
  {
    method: 'post',
    path: '/v1/transfers',
    summary: "Transfer a relocating counselor's caseload",
    access: PERMISSIONS.startTransfer,
    idempotency: 'start',
    body: createTransferBody,
    responses: [{ ...json(202, transferStarted, 'Started'), headers: LOCATION }],
    problems: [409, 422],
  },
  {
    method: 'get',
    path: '/v1/transfers',
    summary: 'List open and recently ended transfers, last day soonest first, with case counts by status, by cursor',
    access: PERMISSIONS.readTransfer,
    query: transferListQuery,
    responses: [json(200, transferPage)],
    problems: [],
  },
  {
    method: 'get',
    path: '/v1/transfers/{transferId}',
    summary: 'Where every client of a transfer stands',
    access: PERMISSIONS.readTransfer,
    params: transferIdParams,
    responses: [json(200, transferProgressView)],
    problems: [404],
  },
  {
    method: 'post',
    path: '/v1/transfers/{transferId}/cancel',
    summary: 'Cancel a transfer and its open cases',
    access: PERMISSIONS.cancelTransfer,
    params: transferIdParams,
    body: cancelCaseBody,
    responses: [json(202, transferCancelled, 'Cancelling: each open case is cancelled, saying why')],
    problems: [404, 409],
  },
  {
    method: 'post',
    path: '/v1/transfers/{transferId}/cases/{caseId}/proposal',
    summary: 'A director overrides the proposed receiving clinician',
    access: PERMISSIONS.overrideProposal,
    params: transferCaseParams,
    body: overrideProposalBody,
    responses: [json(200, proposalOverridden)],
    problems: [404, 409, 422],
  },
  {
    method: 'get',
    path: '/v1/me',
    summary: 'Who you are signed in as, and what the role matrix lets you do',
    access: 'signed-in',
    responses: [json(200, meView)],
    problems: [],
  },
  {
    method: 'put',
    path: '/v1/users/{userId}',
    summary: 'Create or update a user of your agency (admin)',
    access: PERMISSIONS.manageUsers,
    params: userParams,
    body: userBody,
    responses: [json(200, userView, 'Updated'), json(201, userView, 'Created')],
    problems: [],
  },
  {
    method: 'post',
    path: '/v1/users/{userId}/tokens',
    summary: 'Issue a token (shown once) (admin)',
    access: PERMISSIONS.manageUsers,
    params: userParams,
    body: tokenBody,
    responses: [json(201, tokenIssued, 'Issued')],
    problems: [404],
  },
  {
    method: 'post',
    path: '/v1/tokens/{tokenId}/revocation',
    summary: 'Revoke a token (admin)',
    access: PERMISSIONS.manageUsers,
    params: tokenParams,
    responses: [json(200, tokenRevoked)],
    problems: [404],
  },
  {
    method: 'get',
    path: '/v1/audit',
    summary: 'Export the audit trail (compliance, admin): NDJSON or CSV, streamed, with a manifest',
    access: PERMISSIONS.readAudit,
    query: auditQuery,
    responses: [
      {
        status: 200,
        description: 'NDJSON (the manifest first) or CSV (the manifest in X-Audit-Manifest)',
        media: { 'application/x-ndjson': { type: 'string' }, 'text/csv': { type: 'string' } },
        headers: {
          'X-Audit-Manifest': {
            description: 'The filter, the count, the sequence numbers, the head hash, who exported and when (JSON)',
            schema: { type: 'string' },
            required: true,
          },
        },
      },
    ],
    problems: [],
  },
  {
    method: 'get',
    path: '/v1/audit/verify',
    summary: "Recompute the agency's hash chain and compare it with the last anchor",
    access: PERMISSIONS.readAudit,
    query: verifyQuery,
    responses: [json(200, verifyView)],
    problems: [400],
  },
  {
    method: 'get',
    path: '/v1/clients/{clientId}/disclosures',
    summary: 'Accounting of disclosures for a client (42 CFR Part 2 §2.25)',
    access: PERMISSIONS.readAudit,
    params: clientParams,
    query: disclosuresQuery,
    responses: [json(200, disclosuresView)],
    problems: [],
  },
  {
    method: 'get',
    path: '/v1/tasks',
    summary: 'The work queue: what waits for me or my role (view=mine), or the agency (view=agency), overdue first',
    access: PERMISSIONS.readQueue,
    query: taskQuery,
    responses: [json(200, taskPage)],
    problems: [],
  },
  {
    method: 'post',
    path: '/v1/tasks/{taskId}/assignment',
    summary: 'A clinical director hands a task to a named person who may do it',
    access: PERMISSIONS.reassignTask,
    params: taskIdParams,
    body: reassignBody,
    responses: [json(200, taskAssigned)],
    problems: [404, 409, 422],
  },
  {
    method: 'post',
    path: '/v1/tasks/{taskId}/completion',
    summary: 'Mark an outreach task done (waits close by themselves when the case moves on)',
    access: PERMISSIONS.completeTask,
    params: taskIdParams,
    body: completeBody,
    responses: [json(200, taskCompleted)],
    problems: [404, 409],
  },
  {
    method: 'get',
    path: '/v1/mail-batches/{batchDate}',
    summary: "The day's closure letters to print and mail (staff, directors)",
    access: PERMISSIONS.handleMail,
    params: mailBatchParams,
    responses: [json(200, mailBatchView)],
    problems: [],
  },
  {
    method: 'get',
    path: '/v1/mail-batches/{batchDate}/letters.pdf',
    summary: "The day's letters to mail as one PDF (audited)",
    access: PERMISSIONS.handleMail,
    params: mailBatchParams,
    responses: [{ status: 200, description: 'The letters', media: pdf }],
    problems: [],
  },
  {
    method: 'post',
    path: '/v1/mail-batches/{batchDate}/mailed',
    summary: "Record that the day's batch was mailed: each letter in it is then sent",
    access: PERMISSIONS.handleMail,
    params: mailBatchParams,
    responses: [json(200, mailBatchMailed)],
    problems: [],
  },
  ...(['decode', 'encode'] as const).map((direction): Operation => ({
    method: 'post',
    path: `/v1/codec/${direction}`,
    summary:
      direction === 'decode'
        ? 'Temporal codec server: open sealed payloads for the Temporal UI or CLI (audited: counts and key ids, never contents); 422 names a key this service does not hold'
        : 'Temporal codec server: seal payloads as the service does, for input given in the Temporal UI or CLI (audited)',
    access: PERMISSIONS.decodePayloads,
    headers: z.object({ 'X-Namespace': namespaceHeader.describe('The namespace the payloads are from') }),
    body: codecPayloads,
    responses: [json(200, codecPayloads, direction === 'decode' ? 'The payloads, opened' : 'The payloads, sealed')],
    problems: direction === 'decode' ? [422] : [],
  })),
];

/**
 * Every status an operation can answer with a problem: its own, and those of its kind. A signed-in route can be
 * refused its token (401), throttled (429) or find the database down (503); one with roles refuses the others
 * (403); one that reads a path, query, header or body refuses a bad one (400); one with a body refuses it too
 * large (413) or not JSON (415); a start under an Idempotency-Key can find it in use (409) or used for another
 * request (422).
 */
function problemStatuses(op: Operation): number[] {
  const statuses = new Set(op.problems);
  const signedIn = op.access !== 'public' && op.access !== 'metrics';
  if (signedIn) [401, 429, 503].forEach((s) => statuses.add(s));
  if (Array.isArray(op.access) && op.access.length < ROLES.length) statuses.add(403);
  if (op.params || op.query || op.headers || op.body || op.idempotency) statuses.add(400);
  if (op.body) [413, 415].forEach((s) => statuses.add(s));
  if (op.idempotency === 'start') [409, 422].forEach((s) => statuses.add(s));
  return [...statuses].sort();
}

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  schema: { type: 'string', pattern: IDEMPOTENCY_KEY_PATTERN.source },
};

const IDEMPOTENCY_DESCRIPTION = {
  start:
    'The same key and body return the first answer (Idempotent-Replayed: true); the same key with another body is a 422',
  update: 'The same key is the same action: a retry is answered once, not applied twice',
};

const RETRY_AFTER = {
  'Retry-After': {
    description: 'Seconds until the next request is taken',
    schema: { type: 'string', pattern: '^[0-9]+$' },
    required: true,
  },
};

const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    rule: { type: 'string', description: 'The rule of the process that said no' },
    dependency: { type: 'string', enum: ['postgres', 'temporal'], description: 'On a 503: what is down' },
    errors: {
      type: 'array',
      items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
    },
  },
};

const jsonSchemaOptions = {
  target: 'draft-2020-12',
  io: 'input',
  unrepresentable: 'any',
  // A text field's three checks, as the one pattern they amount to (see TEXT_PATTERN).
  override: (ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }) => {
    const text = textFields.get(ctx.zodSchema as z.ZodType);
    if (!text) return;
    const description = ctx.jsonSchema.description ?? TEXT_DESCRIPTION;
    for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
    Object.assign(ctx.jsonSchema, {
      type: 'string',
      minLength: 1,
      maxLength: text.maxChars,
      pattern: TEXT_PATTERN,
      description,
    });
  },
} as const;

/** A named schema (one with a meta id) becomes a reference into components; others are inlined. */
function schemaOf(schema: z.ZodType): Record<string, unknown> {
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

function parametersOf(op: Operation): unknown[] {
  const fields = (schema: z.ZodObject | undefined, where: 'path' | 'query' | 'header') =>
    Object.entries(schema?.shape ?? {}).map(([name, field]) => ({
      name,
      in: where,
      required: where === 'path',
      schema: schemaOf(field as z.ZodType),
    }));
  return [
    ...fields(op.params, 'path'),
    ...fields(op.query, 'query'),
    ...fields(op.headers, 'header'),
    ...(op.idempotency ? [{ ...IDEMPOTENCY_KEY, description: IDEMPOTENCY_DESCRIPTION[op.idempotency] }] : []),
  ];
}

function responsesOf(op: Operation): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const success of op.responses) {
    const content: Record<string, unknown> = {};
    if (success.schema) content['application/json'] = { schema: schemaOf(success.schema) };
    for (const [type, schema] of Object.entries(success.media ?? {})) content[type] = { schema };
    responses[success.status] = {
      description: success.description,
      content,
      ...(success.headers ? { headers: success.headers } : {}),
      ...(op.idempotency === 'start'
        ? {
            headers: {
              ...success.headers,
              'Idempotent-Replayed': {
                description: 'true when this is the first answer to the same Idempotency-Key, replayed',
                schema: { type: 'string', enum: ['true'] },
              },
            },
          }
        : {}),
    };
  }
  for (const status of problemStatuses(op)) {
    responses[status] = {
      description: TITLES[status] ?? 'Problem',
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      ...(status === 429 ? { headers: RETRY_AFTER } : {}),
    };
  }
  return responses;
}

const SECURITY = { public: [], metrics: [{ metrics: [] }], signedIn: [{ bearer: [] }] };

/** The OpenAPI 3.1 document, generated from the same zod schemas the handlers parse with. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const security = op.access === 'public' || op.access === 'metrics' ? SECURITY[op.access] : SECURITY.signedIn;
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      ...(Array.isArray(op.access) && op.access.length < ROLES.length
        ? { description: `For ${op.access.join(', ')}.` }
        : {}),
      parameters: parametersOf(op),
      security,
      ...(op.body
        ? {
            requestBody: {
              // Required only when an absent body (read as {}) would be refused.
              required: !op.body.safeParse({}).success,
              content: { 'application/json': { schema: schemaOf(op.body) } },
            },
          }
        : {}),
      responses: responsesOf(op),
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
        metrics: { type: 'http', scheme: 'bearer', description: 'The METRICS_TOKEN the service was started with' },
      },
    },
    security: [{ bearer: [] }],
  };
}
