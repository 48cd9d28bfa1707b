import { randomUUID } from 'node:crypto';
import { ApplicationFailure, type Payload, type PayloadCodec } from '@temporalio/common';
import express, { type RequestHandler, Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { PAYLOAD_UNREADABLE, isEncrypted, keyIdOf } from '../codec/payload-codec';
import { appendAuditEvent } from '../db/audit';
import type { Database } from '../db/schema';
import { PERMISSIONS } from '../domain/roles';
import { requireRoles, userOf } from './auth';
import { actorOf, parse } from './http';
import { problem } from './problem';

/*
 * The Temporal codec server protocol (what the Temporal UI and `temporal --codec-endpoint` call): POST <endpoint>/decode
 * and /encode, a body of payloads in proto3 JSON (every bytes field base64), answered in the same shape.
 */

/** proto3 JSON bytes: standard or URL-safe base64, padded or not. */
const bytes = z
  .string()
  .max(4_000_000)
  .regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'base64');
const payload = z.strictObject({
  metadata: z.record(z.string().min(1).max(200), bytes).optional(),
  data: bytes.optional(),
});
export const codecPayloads = z
  .strictObject({ payloads: z.array(payload).max(10_000) })
  .meta({ id: 'Payloads', description: 'Temporal payloads in proto3 JSON: metadata values and data in base64' });

/** The namespace the Temporal UI says the payloads are from (recorded in the audit event). */
export const namespaceHeader = z.string().regex(/^[A-Za-z0-9._-]{1,255}$/, 'a Temporal namespace name');

/** A codec body takes a history's worth of payloads; everything else stays at 64 kB. */
export const CODEC_BODY_LIMIT = '4mb';

function fromJson(body: z.infer<typeof codecPayloads>): Payload[] {
  return body.payloads.map((p) => ({
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]),
    ),
    data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
  }));
}

function toJson(payloads: Payload[]): z.infer<typeof codecPayloads> {
  const base64 = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('base64');
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, base64(v)])),
      data: base64(p.data),
    })),
  };
}

/**
 * CORS for the Temporal UI, whose page (another origin) calls the codec from the browser: a preflight from an origin
 * listed in CODEC_CORS_ORIGINS is answered here, before sign-in (a preflight carries no token); any other origin gets
 * no CORS headers, so the browser keeps the answer from its page.
 */
export function codecCors(origins: readonly string[]): RequestHandler {
  return (req, res, next) => {
    const origin = req.get('origin');
    if (!origin || !origins.includes(origin)) return next();
    res.set('Access-Control-Allow-Origin', origin);
    res.set('Access-Control-Allow-Credentials', 'true');
    res.vary('Origin');
    if (req.method !== 'OPTIONS') return next();
    res.set('Access-Control-Allow-Methods', 'POST');
    res.set('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Namespace');
    res.set('Access-Control-Max-Age', '600');
    res.status(204).end();
  };
}

/** Its larger body limit, before the app's 64 kB parser (which then leaves the parsed body alone). */
export const codecBodyParser = express.json({ limit: CODEC_BODY_LIMIT });

/**
 * The codec endpoint: decodes (and encodes) payloads for the Temporal UI and CLI, for the roles of `decodePayloads`.
 * Every call is in the audit trail with counts, key ids and the namespace, never a payload's content.
 */
export function codecRoutes({ db, codec }: { db: Kysely<Database>; codec: PayloadCodec }): Router {
  const router = Router();

  const route = (direction: 'decode' | 'encode') =>
    router.post(`/v1/codec/${direction}`, async (req, res) => {
      const user = userOf(req);
      requireRoles(user, PERMISSIONS.decodePayloads, `${direction === 'decode' ? 'decoding' : 'encoding'} payloads`);
      const given = req.get('x-namespace');
      const namespace =
        given === undefined
          ? null
          : parse(z.object({ 'X-Namespace': namespaceHeader }), { 'X-Namespace': given }, 'header')['X-Namespace'];
      const payloads = fromJson(parse(codecPayloads, req.body, 'body'));
      const sealed = payloads.filter(isEncrypted);
      const audit = (outcome: 'done' | 'refused', outcomeReason: string | null, keyIds: (string | null)[]) =>
        appendAuditEvent(db, {
          eventKey: `payloads:${randomUUID()}`,
          agencyId: user.agencyId,
          actor: actorOf(req),
          action: `payloads.${direction}d`,
          outcome,
          outcomeReason,
          requestId: req.id,
          sourceAddress: req.ip ?? null,
          after: {
            payloads: payloads.length,
            encrypted: sealed.length,
            keyIds: [...new Set(keyIds.filter((id) => id !== null))].sort(),
            namespace,
          },
        });
      let answer: Payload[];
      try {
        answer = direction === 'decode' ? await codec.decode(payloads) : await codec.encode(payloads);
      } catch (error) {
        if (!(error instanceof ApplicationFailure && error.type === PAYLOAD_UNREADABLE)) throw error;
        await audit('refused', error.message, sealed.map(keyIdOf));
        throw problem(422, error.message);
      }
      await audit('done', null, (direction === 'decode' ? sealed : answer).map(keyIdOf));
      res.json(toJson(answer));
    });

  route('decode');
  route('encode');
  return router;
}
