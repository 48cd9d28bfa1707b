import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestHandler } from 'express';
import type { Kysely } from 'kysely';
import { canonicalJson } from '../db/audit';
import { idempotencyExpiry } from '../db/idempotency-keys';
import type { Database } from '../db/schema';
import { userOf } from './auth';
import { problem } from './problem';

/** An Idempotency-Key: 1-200 visible ASCII characters. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;
const WAIT_MS = 15_000;

/**
 * The answer as jsonb will take it: PostgreSQL refuses the NUL character (\u0000) in jsonb, and a refusal can echo
 * a field name the caller sent with one. A NUL becomes U+FFFD in the kept copy; an escaped backslash stays as it is.
 */
function storableJson(body: unknown): string {
  return JSON.stringify(body).replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd');
}

function canonicalBody(body: unknown): string {
  try {
    return canonicalJson(body ?? null);
  } catch (error) {
    // canonicalJson recurses: a body nested thousands deep (64 kB of brackets) overflows the stack.
    if (error instanceof RangeError) {
      throw problem(400, 'the request body is nested too deeply', { type: '/problems/validation' });
    }
    throw error;
  }
}

/**
 * Idempotency-Key for POSTs that start something: the same key and body get the first answer (even
 * while it is being made); the same key with another body is a 422. A 5xx is not kept, so it can be retried.
 * A key is kept `retentionHours`: past that it is a new request, whatever it was sent with before.
 */
export function idempotent(db: Kysely<Database>, { retentionHours }: { retentionHours: number }): RequestHandler {
  return async (req, res, next) => {
    const key = req.get('idempotency-key');
    if (key === undefined) return next();
    if (!IDEMPOTENCY_KEY_PATTERN.test(key))
      throw problem(400, 'Idempotency-Key must be 1-200 visible ASCII characters');
    const user = userOf(req);
    const route = `${req.method} ${req.baseUrl}${req.path}`;
    const requestHash = createHash('sha256').update(route).update('\n').update(canonicalBody(req.body)).digest('hex');
    const claimed = await db
      .insertInto('idempotency_keys')
      .values({
        agency_id: user.agencyId,
        user_id: user.id,
        idempotency_key: key,
        route,
        request_hash: requestHash,
        status: null,
        response: null,
        headers: null,
      })
      .onConflict((oc) => oc.columns(['agency_id', 'user_id', 'idempotency_key']).doNothing())
      .returning('status')
      .executeTakeFirst()
      .then(
        async (row) =>
          row ??
          // An expired key is claimed afresh; so is a claim abandoned by a crashed process (no answer after a minute).
          db
            .updateTable('idempotency_keys')
            .set({
              created_at: new Date(),
              route,
              request_hash: requestHash,
              status: null,
              response: null,
              headers: null,
            })
            .where('agency_id', '=', user.agencyId)
            .where('user_id', '=', user.id)
            .where('idempotency_key', '=', key)
            .where((eb) =>
              eb.or([
                eb('created_at', '<', idempotencyExpiry(retentionHours)),
                eb.and([
                  eb('request_hash', '=', requestHash),
                  eb('status', 'is', null),
                  eb('created_at', '<', new Date(Date.now() - 60_000)),
                ]),
              ]),
            )
            .returning('status')
            .executeTakeFirst(),
      );

    if (claimed) {
      const json = res.json.bind(res);
      res.json = (body: unknown) => {
        const status = res.statusCode;
        const keep = status < 500;
        // A problem keeps its application/problem+json when replayed.
        const headers = { location: res.get('location') ?? null, contentType: res.get('content-type') ?? null };
        const write = keep
          ? db
              .updateTable('idempotency_keys')
              .set({ status, response: storableJson(body), headers: JSON.stringify(headers) })
              .where('agency_id', '=', user.agencyId)
              .where('user_id', '=', user.id)
              .where('idempotency_key', '=', key)
              .execute()
          : db
              .deleteFrom('idempotency_keys')
              .where('agency_id', '=', user.agencyId)
              .where('user_id', '=', user.id)
              .where('idempotency_key', '=', key)
              .execute();
        write.then(
          () => json(body),
          (error: unknown) => next(error),
        );
        return res;
      };
      return next();
    }

    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const row = await db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('agency_id', '=', user.agencyId)
        .where('user_id', '=', user.id)
        .where('idempotency_key', '=', key)
        .executeTakeFirst();
      if (!row) throw problem(409, 'the first request with this Idempotency-Key failed; send it again');
      if (row.request_hash !== requestHash) {
        throw problem(422, 'this Idempotency-Key was used with a different request; use a new key');
      }
      if (row.status !== null) {
        const headers = row.headers as { location: string | null; contentType?: string | null } | null;
        if (headers?.location) res.location(headers.location);
        if (headers?.contentType) res.type(headers.contentType);
        res.set('Idempotent-Replayed', 'true').status(row.status).json(row.response);
        return;
      }
      if (Date.now() > deadline) throw problem(409, 'a request with this Idempotency-Key is still in progress');
      await sleep(50);
    }
  };
}
