import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { Role } from '../domain/case';
import { RELAXED, type RequestCount, countRequest, countingUpsert, requestCount } from './rate-limits';
import type { Database } from './schema';

export interface User {
  id: string;
  role: Role;
  agencyId: string;
  name: string;
  /** Undefined: left as it is. */
  email?: string | null;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A new random token (shown once; only its hash is stored), for `hours` or else `days` (90 by default). */
export async function createToken(
  db: Kysely<Database>,
  owner: { agencyId: string; userId: string },
  options: { label?: string; days?: number; hours?: number } = {},
): Promise<{ tokenId: string; token: string; expiresAt: Date }> {
  const token = `hk_${randomBytes(32).toString('base64url')}`;
  const tokenId = randomUUID();
  const hours = options.hours ?? (options.days ?? 90) * 24;
  const expiresAt = new Date(Date.now() + hours * 3_600_000);
  await db
    .insertInto('api_tokens')
    .values({
      token_id: tokenId,
      agency_id: owner.agencyId,
      user_id: owner.userId,
      token_hash: hashToken(token),
      label: options.label ?? 'token',
      expires_at: expiresAt,
    })
    .execute();
  return { tokenId, token, expiresAt };
}

/** Revokes one token of the agency (only one of this label, when given); false when there is none. */
export async function revokeToken(
  db: Kysely<Database>,
  agencyId: string,
  tokenId: string,
  options: { label?: string } = {},
): Promise<boolean> {
  let update = db
    .updateTable('api_tokens')
    .set({ revoked_at: sql`coalesce(revoked_at, now())` })
    .where('agency_id', '=', agencyId)
    .where('token_id', '=', tokenId);
  if (options.label !== undefined) update = update.where('label', '=', options.label);
  const result = await update.executeTakeFirst();
  return (result.numUpdatedRows ?? 0n) > 0n;
}

export type TokenCheck = { user: User; tokenId: string } | { problem: string };

/** The user behind a bearer token, or why there is none. */
export async function userForToken(db: Kysely<Database>, token: string): Promise<TokenCheck> {
  const row = await db
    .selectFrom('api_tokens as t')
    .innerJoin('users as u', (join) =>
      join.onRef('u.agency_id', '=', 't.agency_id').onRef('u.user_id', '=', 't.user_id'),
    )
    .select(['t.token_id', 't.expires_at', 't.revoked_at', 'u.user_id', 'u.role', 'u.agency_id', 'u.name', 'u.active'])
    .where('t.token_hash', '=', hashToken(token))
    .executeTakeFirst();
  if (!row) return { problem: 'the token is not known' };
  return checkToken(row);
}

/** A token and its user, as sign-in reads them. */
interface TokenRow {
  token_id: string;
  expires_at: Date;
  revoked_at: Date | null;
  user_id: string;
  role: Role;
  agency_id: string;
  name: string;
  active: boolean;
}

/** What a token's row says of it: its user, or why it does not sign anyone in. */
function checkToken(row: TokenRow): TokenCheck {
  if (row.revoked_at) return { problem: 'the token was revoked' };
  if (row.expires_at.getTime() <= Date.now()) return { problem: 'the token has expired' };
  if (!row.active) return { problem: 'the user is deactivated' };
  return { user: { id: row.user_id, role: row.role, agencyId: row.agency_id, name: row.name }, tokenId: row.token_id };
}

/**
 * A request's sign-in in one round trip: it is counted against its address's window, its token's user is found,
 * and, when the address is within `addressLimit` and the token signs someone in, it is counted against the token's
 * window too (`token:<id>`). A request with no token is counted against its address only.
 */
export async function signInCounted(
  db: Kysely<Database>,
  input: { addressKey: string; token: string | undefined; addressLimit: number; windowSeconds: number },
): Promise<{ address: RequestCount; check: TokenCheck | undefined; token: RequestCount | undefined }> {
  if (input.token === undefined) {
    return {
      address: await countRequest(db, input.addressKey, input.windowSeconds),
      check: undefined,
      token: undefined,
    };
  }
  const address = countingUpsert(sql`select ${input.addressKey}, now(), 1 from ${RELAXED}`, input.windowSeconds);
  const token = countingUpsert(
    sql`select 'token:' || token.token_id, now(), 1 from token, address
         where address.count <= ${input.addressLimit} and token.revoked_at is null
           and token.expires_at > now() and token.active`,
    input.windowSeconds,
  );
  const { rows } = await sql<
    Omit<TokenRow, 'token_id'> & {
      token_id: string | null;
      address_count: number;
      address_resets_in: number;
      token_count: number | null;
      token_resets_in: number | null;
    }
  >`
    with address as (${address}),
    token as (
      select t.token_id, t.expires_at, t.revoked_at, u.user_id, u.role, u.agency_id, u.name, u.active
        from api_tokens t join users u on u.agency_id = t.agency_id and u.user_id = t.user_id
       where t.token_hash = ${hashToken(input.token)}
    ),
    counted as (${token})
    select address.count as address_count, address.resets_in as address_resets_in, token.*,
           counted.count as token_count, counted.resets_in as token_resets_in
      from address left join token on true left join counted on true`.execute(db);
  const row = rows[0]!;
  return {
    address: requestCount(row.address_count, row.address_resets_in),
    check:
      row.token_id === null ? { problem: 'the token is not known' } : checkToken({ ...row, token_id: row.token_id }),
    token: row.token_count === null ? undefined : requestCount(row.token_count, row.token_resets_in ?? 1),
  };
}

export async function upsertUser(db: Kysely<Database>, user: User): Promise<void> {
  await db
    .insertInto('users')
    .values({
      user_id: user.id,
      role: user.role,
      agency_id: user.agencyId,
      name: user.name,
      ...(user.email !== undefined ? { email: user.email } : {}),
    })
    .onConflict((oc) =>
      oc.columns(['agency_id', 'user_id']).doUpdateSet({
        role: user.role,
        name: user.name,
        ...(user.email !== undefined ? { email: user.email } : {}),
      }),
    )
    .execute();
}

/** One user of one agency; another agency's user of the same id is not found. */
export async function findUser(db: Kysely<Database>, agencyId: string, userId: string) {
  return db
    .selectFrom('users')
    .selectAll()
    .where('agency_id', '=', agencyId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
}
