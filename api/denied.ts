import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import type { Kysely } from 'kysely';
import { appendAuditEvent } from '../db/audit';
import type { Database } from '../db/schema';
import type { User } from '../db/users';
import { problem } from './problem';

/**
 * A read refused because the object is outside the caller's scope (another agency's, another counselor's, or
 * none at all) is recorded in the caller's agency's trail; the caller learns no more than "not found".
 */
export async function recordDeniedRead(
  db: Kysely<Database>,
  req: Request,
  user: User,
  object: { kind: string; id: string },
  detail: string,
): Promise<void> {
  await appendAuditEvent(db, {
    eventKey: `denied:${randomUUID()}`,
    agencyId: user.agencyId,
    actor: { id: user.id, role: user.role },
    action: `${object.kind}.read_denied`,
    clientId: object.kind === 'client' ? object.id : null,
    outcome: 'refused',
    outcomeReason: `not in the caller's scope: ${detail}`,
    requestId: req.id,
    sourceAddress: req.ip ?? null,
    after: { [object.kind === 'case' ? 'requestedCaseId' : 'requestedId']: object.id, method: req.method },
  });
}

/** Records the denied read, then answers 404. */
export async function deniedRead(
  db: Kysely<Database>,
  req: Request,
  user: User,
  object: { kind: string; id: string },
  detail: string,
): Promise<never> {
  await recordDeniedRead(db, req, user, object, detail);
  throw problem(404, detail);
}
