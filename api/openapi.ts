import { z } from 'zod';
import { ACTION_ROUTES } from './cases';
import { actorHeaders, caseView, createCaseBody, healthView, policyBody } from './schemas';

interface Operation {
  method: 'get' | 'post' | 'put';
  path: string;
  summary: string;
  actor?: boolean;
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
    body: createCaseBody,
    response: { status: 202, schema: caseView },
    problems: [400, 401, 409, 503],
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
  const actorParams = Object.entries(actorHeaders.shape).map(([name, schema]) => ({
    name,
    in: 'header',
    required: true,
    schema: schemaOf(schema),
  }));
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
      parameters: [...pathParams, ...(op.actor ? actorParams : [])],
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
    components: { schemas: { ...namedSchemas(), Problem: problemSchema } },
  };
}
