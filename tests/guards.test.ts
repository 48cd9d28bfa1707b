import { randomInt, randomUUID } from 'node:crypto';
import { type Db, openDatabase } from '../db/database';
import { purgeExpiredIdempotencyKeys } from '../db/idempotency-keys';
import { purgeRateLimitWindows } from '../db/rate-limits';
import { hashToken } from '../db/users';
import { testContext } from './support/context';
import { type ApiResponse, send, tokenFor, withApp } from './support/stack';

let handle: ReturnType<typeof openDatabase>;
let db: Db;
beforeAll(() => {
  handle = openDatabase(testContext().databaseUrl);
  db = handle.db;
});
afterAll(async () => {
  await handle.close();
});

/** An address no other test uses: every test file's requests share the one database that counts them. */
function testAddress(): string {
  return `198.51.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

/** Two API replicas on the same database, as a deployment behind a load balancer runs them. */
async function withTwoApps(
  options: Parameters<typeof withApp>[0],
  run: (a: string, b: string) => Promise<void>,
): Promise<void> {
  await withApp(options, (a) => withApp(options, (b) => run(a, b)));
}

describe('rate limit', () => {
  test('when one token calls two API instances, then they share one budget and the sixth request of five is a 429', async () => {
    const token = await tokenFor(db, { id: `staff-${randomUUID()}`, role: 'staff' });
    await withTwoApps({ rateLimitPerMinute: 5 }, async (a, b) => {
      const statuses: number[] = [];
      for (const url of [a, b, a, b, a, b]) statuses.push((await send(url, 'GET', '/v1/me', { token })).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      const limited = await send<any>(b, 'GET', '/v1/me', { token });
      expect(limited.status).toBe(429);
      expect(limited.body.detail).toBe('more than 5 requests a minute with this token; slow down');
      const retryAfter = Number(limited.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
    });
  });

  test('when one address floods two API instances with bad tokens, then past its budget it gets 429 with Retry-After before any token is looked up', async () => {
    const address = testAddress();
    await withTwoApps({ rateLimitPerAddressPerMinute: 10 }, async (a, b) => {
      const answers: ApiResponse[] = [];
      for (let i = 0; i < 14; i++) {
        answers.push(
          await send(i % 2 ? b : a, 'GET', '/v1/me', {
            token: `hk_not-a-token-${i}-0123456789`,
            headers: { 'x-forwarded-for': address },
          }),
        );
      }
      expect(answers.map((r) => r.status)).toEqual([...Array(10).fill(401), ...Array(4).fill(429)]);
      const limited = answers.at(-1)!;
      expect(limited.body.detail).toBe('more than 10 requests a minute from this address; slow down');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      // With no token at all it is the same address, the same budget.
      const bare = await send(a, 'GET', '/v1/me', { headers: { 'x-forwarded-for': address } });
      expect(bare.status).toBe(429);
      // Another address is not throttled by this one's flood.
      const other = await send(a, 'GET', '/v1/me', {
        token: 'hk_not-a-token-0123456789',
        headers: { 'x-forwarded-for': testAddress() },
      });
      expect(other.status).toBe(401);
    });
  });

  test("when an address is past its budget, then its good token's requests are refused without spending the token's budget", async () => {
    const address = testAddress();
    const token = await tokenFor(db, { id: `staff-${randomUUID()}`, role: 'staff' });
    await withApp({ rateLimitPerAddressPerMinute: 3, rateLimitPerMinute: 100 }, async (url) => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        statuses.push((await send(url, 'GET', '/v1/me', { token, headers: { 'x-forwarded-for': address } })).status);
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
      const me = await send(url, 'GET', '/v1/me', { token, headers: { 'x-forwarded-for': testAddress() } });
      expect(me.status).toBe(200);
      // The token was counted for the three requests within the address's budget and the one from elsewhere.
      const { token_id } = await db
        .selectFrom('api_tokens')
        .select('token_id')
        .where('token_hash', '=', hashToken(token))
        .executeTakeFirstOrThrow();
      const windows = await db
        .selectFrom('rate_limit_windows')
        .select(['key', 'count'])
        .where('key', 'in', [`address:${address}`, `token:${token_id}`])
        .orderBy('key')
        .execute();
      expect(windows).toEqual([
        { key: `address:${address}`, count: 6 },
        { key: `token:${token_id}`, count: 4 },
      ]);
    });
  });

  test('when requests come from one IPv6 /64, then its addresses share one budget', async () => {
    const prefix = `2001:db8:${randomInt(0, 0xffff).toString(16)}:${randomInt(0, 0xffff).toString(16)}`;
    await withApp({ rateLimitPerAddressPerMinute: 2 }, async (url) => {
      const statuses: number[] = [];
      for (const address of [`${prefix}::1`, `${prefix}:1:2:3:4`, `${prefix}:0:0:0:ff`]) {
        statuses.push((await send(url, 'GET', '/v1/me', { headers: { 'x-forwarded-for': address } })).status);
      }
      expect(statuses).toEqual([401, 401, 429]);
    });
  });

  test('when a window ended minutes ago, then the purge drops it and keeps the current ones', async () => {
    const stale = `address:test-${randomUUID()}`;
    const current = `address:test-${randomUUID()}`;
    await db
      .insertInto('rate_limit_windows')
      .values([
        { key: stale, started_at: new Date(Date.now() - 30 * 60_000), count: 7 },
        { key: current, started_at: new Date(), count: 1 },
      ])
      .execute();
    expect(await purgeRateLimitWindows(db, 600)).toBeGreaterThanOrEqual(1);
    const left = await db.selectFrom('rate_limit_windows').select('key').where('key', 'in', [stale, current]).execute();
    expect(left.map((r) => r.key)).toEqual([current]);
  });
});

describe('idempotency keys expire', () => {
  const director = () => ({ id: `director-${randomUUID()}`, role: 'clinical_director' as const });

  test('when an Idempotency-Key is older than its retention, then the same key makes a new request instead of a 422', async () => {
    const token = await tokenFor(db, director());
    const key = `expiry-${randomUUID()}`;
    const path = `/v1/cases/${randomUUID()}/cancel`;
    await withApp({ idempotencyKeyHours: 1 }, async (url) => {
      const post = (reason: string) =>
        send<any>(url, 'POST', path, { token, body: { reason }, headers: { 'idempotency-key': key } });
      const first = await post('the move fell through');
      expect(first.status).toBeLessThan(500);
      expect((await post('the client chose to stay')).status).toBe(422);

      await db
        .updateTable('idempotency_keys')
        .set({ created_at: new Date(Date.now() - 2 * 3_600_000) })
        .where('idempotency_key', '=', key)
        .execute();
      const renewed = await post('the client chose to stay');
      expect(renewed.status).toBe(first.status);
      expect(renewed.headers.get('idempotent-replayed')).toBeNull();
      // The key now holds the new request: it replays that one, and refuses the first body.
      const replay = await post('the client chose to stay');
      expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([first.status, 'true']);
      expect((await post('the move fell through')).status).toBe(422);
    });
  });

  test('when keys are past their retention, then the purge deletes them and keeps the fresh ones', async () => {
    const token = await tokenFor(db, director());
    const [old, fresh] = [`purge-old-${randomUUID()}`, `purge-fresh-${randomUUID()}`];
    await withApp({}, async (url) => {
      for (const key of [old, fresh]) {
        await send(url, 'POST', `/v1/cases/${randomUUID()}/cancel`, {
          token,
          body: { reason: 'the move fell through' },
          headers: { 'idempotency-key': key },
        });
      }
    });
    await db
      .updateTable('idempotency_keys')
      .set({ created_at: new Date(Date.now() - 25 * 3_600_000) })
      .where('idempotency_key', '=', old)
      .execute();
    expect(await purgeExpiredIdempotencyKeys(db, 24)).toBeGreaterThanOrEqual(1);
    const left = await db
      .selectFrom('idempotency_keys')
      .select('idempotency_key')
      .where('idempotency_key', 'in', [old, fresh])
      .execute();
    expect(left.map((r) => r.idempotency_key)).toEqual([fresh]);
  });
});

describe('metrics', () => {
  test('when no METRICS_TOKEN is configured, then /metrics is off for everyone, signed-in users included', async () => {
    const token = await tokenFor(db, { id: `admin-${randomUUID()}`, role: 'admin' });
    await withApp({}, async (url) => {
      const anonymous = await send<any>(url, 'GET', '/metrics');
      expect([anonymous.status, anonymous.body.detail]).toEqual([
        404,
        'metrics are off: set METRICS_TOKEN to scrape them',
      ]);
      expect((await send(url, 'GET', '/metrics', { token })).status).toBe(404);
    });
  });
});
