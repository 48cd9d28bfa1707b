import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { loadConfig, oidcSettings } from '../config';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { createToken, upsertUser } from '../db/users';
import { freePort } from '../scripts/dev-services';
import { TEST_DIR, testContext } from './support/context';
import { Browser, type ProviderOptions, type RunningProcess, startApiProcess, startOidcProvider } from './support/oidc';
import { launchChromium } from './support/chromium';
import { send, withApp } from './support/stack';

/*
 * Sign-in through a real OpenID provider (oidc-provider, in a process of its own) against the API as production
 * runs it (`tsx api/main.ts`, configured by its environment), each step over HTTP as a browser would make it.
 */

const AGENCY = 'agency-oidc';
const OTHER_AGENCY = 'agency-oidc-other';
const COOKIE_SECRET = randomBytes(32).toString('hex');
const MFA = ['pwd', 'otp', 'mfa'];
const person = (userId: string, role: string, agencyId = AGENCY) => ({
  preferred_username: userId,
  handoff_agency: agencyId,
  handoff_role: role,
  name: userId,
});
const ACCOUNTS: ProviderOptions['accounts'] = {
  director: { amr: MFA, claims: person('oidc-director-1', 'clinical_director') },
  'director-without-mfa': { amr: ['pwd'], claims: person('oidc-director-2', 'clinical_director') },
  'staff-claiming-director': { amr: MFA, claims: person('oidc-staff-1', 'clinical_director') },
  stranger: { amr: MFA, claims: person('oidc-stranger', 'staff') },
  'director-of-another-agency': { amr: MFA, claims: person('oidc-director-1', 'clinical_director', OTHER_AGENCY) },
  deactivated: { amr: MFA, claims: person('oidc-staff-2', 'staff') },
  'without-agency': { amr: MFA, claims: { preferred_username: 'oidc-staff-1', handoff_role: 'staff' } },
};

let database: DatabaseHandle;
let provider: RunningProcess & { issuer: string };
let api: RunningProcess;
let apiUrl: string;

beforeAll(async () => {
  const context = testContext();
  database = openDatabase(context.databaseUrl);
  const db = database.db;
  await upsertUser(db, { id: 'oidc-director-1', role: 'clinical_director', agencyId: AGENCY, name: 'Dana' });
  await upsertUser(db, { id: 'oidc-director-2', role: 'clinical_director', agencyId: AGENCY, name: 'Lee' });
  await upsertUser(db, { id: 'oidc-staff-1', role: 'staff', agencyId: AGENCY, name: 'Pat' });
  await upsertUser(db, { id: 'oidc-staff-2', role: 'staff', agencyId: AGENCY, name: 'Sam' });
  await db
    .updateTable('users')
    .set({ active: false })
    .where('agency_id', '=', AGENCY)
    .where('user_id', '=', 'oidc-staff-2')
    .execute();

  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  const client = { clientId: 'handoff', clientSecret: randomBytes(24).toString('hex') };
  provider = await startOidcProvider({ ...client, redirectUri: `${apiUrl}/auth/oidc/callback`, accounts: ACCOUNTS });
  api = await startApiProcess(
    {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: join(TEST_DIR, 'oidc'),
      DATABASE_URL: context.databaseUrl,
      TEMPORAL_ADDRESS: context.temporalAddress,
      OIDC_ISSUER: provider.issuer,
      OIDC_CLIENT_ID: client.clientId,
      OIDC_CLIENT_SECRET: client.clientSecret,
      OIDC_COOKIE_SECRET: COOKIE_SECRET,
    },
    apiUrl,
  );
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await provider?.stop();
  await database?.close();
});

/** Starts a sign-in at handoff and signs in at the provider as `account`: the provider's answer, not yet taken. */
async function authorize(browser: Browser, account: string, returnTo?: string): Promise<string> {
  const query = returnTo === undefined ? '' : `?return=${encodeURIComponent(returnTo)}`;
  const start = await browser.get(`${apiUrl}/auth/oidc/login${query}`);
  expect(start.status).toBe(303);
  const form = await throughProvider(browser, start.location!);
  expect(form.status).toBe(200);
  const action = /<form method="post" action="([^"]+)"/.exec(form.body)![1]!;
  const signedIn = await browser.post(new URL(action, provider.issuer).href, { login: account });
  const answer = await throughProvider(browser, signedIn.location!);
  expect(answer.location).toMatch(new RegExp(`^${apiUrl}/auth/oidc/callback\\?`));
  return answer.location!;
}

/** Follows the provider's redirects among its own pages. */
async function throughProvider(browser: Browser, url: string) {
  let visit = await browser.get(url);
  while (visit.location?.startsWith(provider.issuer)) visit = await browser.get(visit.location);
  return visit;
}

async function signIn(account: string, returnTo?: string) {
  const browser = new Browser();
  const answer = await authorize(browser, account, returnTo);
  return { browser, answer, page: await browser.get(answer) };
}

function signedIn(html: string): { token: string; returnTo: string } | undefined {
  const match = /<div id="handoff-signin" data-token="([^"]*)" data-return="([^"]*)"><\/div>/.exec(html);
  return match ? { token: match[1]!, returnTo: unescape(match[2]!) } : undefined;
}

/** The text of a page, with its character references read. */
function unescape(html: string): string {
  return html.replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code)));
}

async function signInTokens(): Promise<number> {
  const row = await database.db
    .selectFrom('api_tokens')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('agency_id', 'in', [AGENCY, OTHER_AGENCY])
    .where('label', '=', 'oidc')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function events(action: string) {
  return database.db
    .selectFrom('audit_events')
    .selectAll()
    .where('agency_id', 'in', [AGENCY, OTHER_AGENCY])
    .where('action', '=', action)
    .orderBy('seq')
    .execute();
}

/** The sign-in cookie, with its payload changed and signed again with the API's secret. */
function resigned(sealed: string, change: (pending: Record<string, unknown>) => Record<string, unknown>): string {
  const pending = JSON.parse(Buffer.from(sealed.split('.')[0]!, 'base64url').toString('utf8'));
  const payload = Buffer.from(JSON.stringify(change(pending))).toString('base64url');
  return `${payload}.${createHmac('sha256', COOKIE_SECRET).update(payload).digest('base64url')}`;
}

describe('configuration', () => {
  test('when OIDC_ISSUER is set without its companions, then the configuration is refused naming each', () => {
    expect(() => loadConfig({ OIDC_ISSUER: 'https://id.agency.example' })).toThrow(
      /OIDC_CLIENT_ID: must be set when OIDC_ISSUER is set\n\s+OIDC_CLIENT_SECRET: must be set.*\n\s+OIDC_COOKIE_SECRET: must be set/,
    );
    expect(() =>
      loadConfig({
        OIDC_ISSUER: 'https://id.agency.example',
        OIDC_CLIENT_ID: 'handoff',
        OIDC_CLIENT_SECRET: 'secret',
        OIDC_COOKIE_SECRET: 'too short',
      }),
    ).toThrow(/OIDC_COOKIE_SECRET: must be 32 characters or more/);
  });

  test('when OIDC runs in production over plain HTTP, then the configuration is refused', () => {
    const env = {
      NODE_ENV: 'production',
      OIDC_ISSUER: 'http://id.agency.example',
      OIDC_CLIENT_ID: 'handoff',
      OIDC_CLIENT_SECRET: 'secret',
      OIDC_COOKIE_SECRET: COOKIE_SECRET,
    };
    expect(() => loadConfig(env)).toThrow(/OIDC_ISSUER: must be an https URL in production/);
    expect(() => loadConfig(env)).toThrow(/OIDC_REDIRECT_URL: must be an https URL in production/);
  });

  test('when only the required OIDC variables are set, then the defaults of the contract apply', () => {
    const config = loadConfig({
      OIDC_ISSUER: 'https://id.agency.example',
      OIDC_CLIENT_ID: 'handoff',
      OIDC_CLIENT_SECRET: 'secret',
      OIDC_COOKIE_SECRET: COOKIE_SECRET,
      PUBLIC_URL: 'https://handoff.agency.example/',
    });
    expect(oidcSettings(config)).toEqual({
      issuer: 'https://id.agency.example',
      clientId: 'handoff',
      clientSecret: 'secret',
      redirectUrl: 'https://handoff.agency.example/auth/oidc/callback',
      cookieSecret: COOKIE_SECRET,
      claims: { user: 'preferred_username', agency: 'handoff_agency', role: 'handoff_role' },
      requireMfa: true,
      scopes: 'openid profile',
      sessionHours: 8,
    });
    expect(oidcSettings(loadConfig({}))).toBeUndefined();
    expect(loadConfig({ OIDC_REQUIRE_MFA: 'false' }).OIDC_REQUIRE_MFA).toBe(false);
  });
});

describe('without OIDC', () => {
  test('when OIDC is not configured, then /auth/config says so and its sign-in routes are 404 problems', async () => {
    await withApp({}, async (url) => {
      expect((await send(url, 'GET', '/auth/config')).body).toEqual({ oidc: false, devTokens: true });
      for (const path of ['/auth/oidc/login', '/auth/oidc/callback?code=x&state=y']) {
        const res = await send<{ detail: string }>(url, 'GET', path);
        expect(res.status).toBe(404);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(res.body.detail).toMatch(/no OIDC_ISSUER/);
      }
    });
    await withApp({ devTokens: false }, async (url) => {
      expect((await send(url, 'GET', '/auth/config')).body).toEqual({ oidc: false, devTokens: false });
    });
  });
});

describe('sign-in through the provider', () => {
  test('when OIDC is configured, then /auth/config says so', async () => {
    expect((await send(apiUrl, 'GET', '/auth/config')).body).toEqual({ oidc: true, devTokens: true });
  });

  test('when a director signs in through the provider in a real browser, then the staff page lands on their queue and keeps the token for the tab only', async () => {
    const chromium = await launchChromium();
    try {
      const context = await chromium.newContext();
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      page.setDefaultTimeout(20_000);
      await page.goto(`${apiUrl}/`);
      await page.getByRole('link', { name: "Sign in with your agency's account" }).click();
      // The provider's own page (tests/support/oidc-provider.mts): the account to sign in as.
      await page.locator('input[name="login"]').fill('director');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'My queue' }).waitFor();
      expect(await page.getByTestId('who').textContent()).toContain('Dana · clinical director');
      const token = await page.evaluate(() =>
        (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem(
          'handoff.token',
        ),
      );
      expect(token).toMatch(/^hk_/);
      // A new tab of the same browser starts signed out: the token lived in that tab's session only.
      const other = await context.newPage();
      await other.goto(`${apiUrl}/`);
      await other.getByRole('heading', { name: 'Sign in to handoff' }).waitFor();
      // Signing out revokes the token the sign-in minted.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in to handoff' }).waitFor();
      expect((await send(apiUrl, 'GET', '/v1/me', { token })).status).toBe(401);
      expect(errors).toEqual([]);
    } finally {
      await chromium.close();
    }
  });

  test('when a sign-in starts, then the browser goes to the provider with PKCE, state and nonce, and carries them in a signed, short-lived cookie', async () => {
    const browser = new Browser();
    const start = await browser.get(`${apiUrl}/auth/oidc/login?return=/cases`);
    expect(start.status).toBe(303);
    const authorization = new URL(start.location!);
    expect(authorization.origin).toBe(provider.issuer);
    expect(Object.fromEntries(authorization.searchParams)).toEqual(
      expect.objectContaining({
        client_id: 'handoff',
        response_type: 'code',
        scope: 'openid profile',
        redirect_uri: `${apiUrl}/auth/oidc/callback`,
        code_challenge_method: 'S256',
        code_challenge: expect.stringMatching(/^[\w-]{43}$/),
        state: expect.stringMatching(/^[\w-]{20,}$/),
        nonce: expect.stringMatching(/^[\w-]{20,}$/),
      }),
    );
    const cookie = start.headers.getSetCookie().find((c) => c.startsWith('handoff_oidc='))!;
    expect(cookie).toMatch(/; Max-Age=600;/);
    expect(cookie).toMatch(/; Path=\/auth\/oidc;/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    // The API's redirect URL is plain HTTP here; over https the cookie is Secure.
    expect(cookie).not.toMatch(/; Secure/);
    // Nothing of the sign-in's secrets is readable in it but the state the provider sends back anyway.
    const pending = JSON.parse(Buffer.from(cookie.split('=')[1]!.split('.')[0]!, 'base64url').toString('utf8'));
    expect(pending.state).toBe(authorization.searchParams.get('state'));
    expect(pending.returnTo).toBe('/cases');
  });

  test('when a director signs in with a second factor, then the minted token works as the director of the agency on record, for SESSION_HOURS, and the sign-in is audited', async () => {
    const before = await signInTokens();
    const { browser, page } = await signIn('director', '/cases?view=mine#top');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-store');
    const session = signedIn(page.body)!;
    expect(session.token).toMatch(/^hk_[\w-]{43}$/);
    expect(session.returnTo).toBe('/cases?view=mine#top');
    expect(page.body).toBe(
      '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing in — handoff</title></head><body>' +
        `<div id="handoff-signin" data-token="${session.token}" data-return="/cases?view=mine#top"></div>` +
        '<p>Signing you in…</p><script type="module" src="/ui/signin.js"></script></body></html>',
    );
    expect(browser.cookie(`${apiUrl}/auth/oidc/callback`, 'handoff_oidc')).toBeUndefined();
    expect(await signInTokens()).toBe(before + 1);

    // The agency's queue is for directors: the role is the record's.
    const requestId = `oidc-${randomUUID()}`;
    const tasks = await send(apiUrl, 'GET', '/v1/tasks?view=agency', {
      token: session.token,
      headers: { 'x-request-id': requestId },
    });
    expect(tasks.status).toBe(200);
    const listed = await database.db
      .selectFrom('audit_events')
      .select(['actor_id', 'actor_role', 'agency_id'])
      .where('request_id', '=', requestId)
      .executeTakeFirstOrThrow();
    expect(listed).toEqual({ actor_id: 'oidc-director-1', actor_role: 'clinical_director', agency_id: AGENCY });

    const token = await database.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('agency_id', '=', AGENCY)
      .where('label', '=', 'oidc')
      .orderBy('created_at', 'desc')
      .executeTakeFirstOrThrow();
    expect(token.user_id).toBe('oidc-director-1');
    expect(Math.abs(token.expires_at.getTime() - (Date.now() + 8 * 3_600_000))).toBeLessThan(60_000);

    const audited = (await events('auth.signed_in')).at(-1)!;
    expect(audited).toMatchObject({ actor_id: 'oidc-director-1', actor_role: 'clinical_director', outcome: 'done' });
    expect(audited.after).toEqual({
      tokenId: token.token_id,
      expiresAt: token.expires_at.toISOString(),
      issuer: provider.issuer,
      subject: 'director',
    });
    expect(JSON.stringify(audited)).not.toContain(session.token);
  });

  test.each([
    ['director-without-mfa', /no "mfa" in amr.*OIDC_REQUIRE_MFA=false/],
    ['staff-claiming-director', /says you are clinical_director, but agency-oidc's record says staff/],
    ['stranger', /agency-oidc has no handoff user oidc-stranger/],
    ['director-of-another-agency', /agency-oidc-other has no handoff user oidc-director-1/],
    ['deactivated', /oidc-staff-2 is deactivated in agency-oidc/],
    ['without-agency', /did not send the handoff_agency claim/],
  ])('when %s signs in, then the sign-in is refused saying why, and no token is minted', async (account, why) => {
    const before = await signInTokens();
    const refusedBefore = (await events('auth.sign_in')).length;
    const { browser, page } = await signIn(account);
    expect(page.status).toBe(403);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(signedIn(page.body)).toBeUndefined();
    expect(unescape(page.body)).toMatch(why);
    expect(page.body).toContain('<a href="/">');
    expect(browser.cookie(`${apiUrl}/auth/oidc/callback`, 'handoff_oidc')).toBeUndefined();
    expect(await signInTokens()).toBe(before);
    // Someone the provider identified is audited; without an agency there is no agency to audit it in.
    const refused = await events('auth.sign_in');
    if (account === 'without-agency') return;
    expect(refused).toHaveLength(refusedBefore + 1);
    expect(refused.at(-1)).toMatchObject({
      actor_id: ACCOUNTS[account]!.claims.preferred_username,
      outcome: 'refused',
      outcome_reason: expect.stringMatching(why),
    });
  });

  test('when the state in the provider’s answer is changed, then the sign-in is refused and nothing is minted', async () => {
    const before = await signInTokens();
    const browser = new Browser();
    const answer = new URL(await authorize(browser, 'director'));
    answer.searchParams.set('state', 'x'.repeat(43));
    const page = await browser.get(answer.href);
    expect(page.status).toBe(400);
    expect(unescape(page.body)).toMatch(/belongs to another sign-in; start again/);
    expect(await signInTokens()).toBe(before);
  });

  test('when a code from another sign-in is brought with this browser’s cookie and state, then PKCE refuses it', async () => {
    const before = await signInTokens();
    const victim = new Browser();
    const own = new URL(await authorize(victim, 'director'));
    const injected = new URL(await authorize(new Browser(), 'director'));
    injected.searchParams.set('state', own.searchParams.get('state')!);
    const page = await victim.get(injected.href);
    expect(page.status).toBe(400);
    expect(unescape(page.body)).toMatch(/refused this sign-in's code \(invalid_grant\)/);
    expect(await signInTokens()).toBe(before);
  });

  test('when the sign-in cookie is missing, forged, expired or from an earlier try, then the answer is refused (400) and nothing is minted', async () => {
    const before = await signInTokens();
    const callback = `${apiUrl}/auth/oidc/callback`;

    const missing = new Browser();
    expect((await missing.get(await authorize(new Browser(), 'director'))).status).toBe(400);

    for (const change of [
      // the payload changed without the secret: the signature no longer holds
      (browser: Browser) => {
        const [payload, signature] = browser.cookie(callback, 'handoff_oidc')!.split('.');
        const pending = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
        const forged = Buffer.from(JSON.stringify({ ...pending, returnTo: '//evil.example' })).toString('base64url');
        browser.setCookie(callback, 'handoff_oidc', `${forged}.${signature}`, '/auth/oidc');
      },
      // signed with the secret, but older than 10 minutes
      (browser: Browser) => {
        const sealed = browser.cookie(callback, 'handoff_oidc')!;
        const expired = resigned(sealed, (pending) => ({ ...pending, expires: Date.now() - 1 }));
        browser.setCookie(callback, 'handoff_oidc', expired, '/auth/oidc');
      },
    ]) {
      const browser = new Browser();
      const answer = await authorize(browser, 'director');
      change(browser);
      const page = await browser.get(answer);
      expect(page.status).toBe(400);
      expect(unescape(page.body)).toMatch(/started more than 10 minutes ago or in another browser; start again/);
    }

    // The cookie goes with the first answer: the same answer again finds none.
    const { browser, answer, page } = await signIn('director');
    expect(page.status).toBe(200);
    expect((await browser.get(answer)).status).toBe(400);
    expect(await signInTokens()).toBe(before + 1);
  });

  test('when the provider answers with an error, then the page says the provider did not sign you in', async () => {
    const browser = new Browser();
    const start = await browser.get(`${apiUrl}/auth/oidc/login`);
    const state = new URL(start.location!).searchParams.get('state')!;
    const page = await browser.get(
      `${apiUrl}/auth/oidc/callback?error=access_denied&error_description=${encodeURIComponent('<b>call 555-0100</b>')}&state=${state}`,
    );
    expect(page.status).toBe(403);
    expect(unescape(page.body)).toMatch(/your identity provider did not sign you in \(access_denied\)/);
    expect(page.body).not.toContain('555-0100');
  });

  test('when hostile query strings reach the callback, then each is a 400 or 403 page, never a 500', async () => {
    const before = await signInTokens();
    const queries = [
      '',
      '?code=',
      '?code=a&code=b&state=s',
      '?state[]=s&code=c',
      '?state=%ZZ&code=%',
      `?code=${'a'.repeat(10_000)}&state=s`,
      '?error=<script>alert(1)</script>',
      '?error=access_denied&error=x',
      '?iss=https://evil.example&code=c&state=s',
    ];
    const wrong: string[] = [];
    for (const query of queries) {
      for (const browser of [new Browser(), await withPendingSignIn()]) {
        const page = await browser.get(`${apiUrl}/auth/oidc/callback${query}`);
        const type = page.headers.get('content-type') ?? '';
        if (![400, 403].includes(page.status) || !type.startsWith('text/html') || page.body.includes('<script>alert')) {
          wrong.push(`${query.slice(0, 80)}: ${page.status} ${type}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(await signInTokens()).toBe(before);
  });

  test.each(['//evil.example', '/\\evil.example', '/\t/evil.example', 'https://evil.example/', 'evil.example'])(
    'when the return path is %j, then the sign-in returns to / instead',
    async (returnTo) => {
      const { page } = await signIn('director', returnTo);
      expect(page.status).toBe(200);
      expect(signedIn(page.body)!.returnTo).toBe('/');
    },
  );

  test('when a signed-in user signs out, then their sign-in token is revoked and an API token of theirs still works', async () => {
    const { page } = await signIn('director');
    const { token } = signedIn(page.body)!;
    const { token: apiToken } = await createToken(
      database.db,
      { agencyId: AGENCY, userId: 'oidc-director-1' },
      { label: 'laptop' },
    );
    expect((await send(apiUrl, 'POST', '/auth/sign-out', { token })).status).toBe(204);
    const afterwards = await send<{ detail: string }>(apiUrl, 'GET', '/v1/tasks', { token });
    expect(afterwards.status).toBe(401);
    expect(afterwards.body.detail).toBe('the token was revoked');
    expect((await events('auth.signed_out')).at(-1)).toMatchObject({ actor_id: 'oidc-director-1', outcome: 'done' });

    expect((await send(apiUrl, 'POST', '/auth/sign-out', { token: apiToken })).status).toBe(204);
    expect((await send(apiUrl, 'GET', '/v1/tasks', { token: apiToken })).status).toBe(200);
    expect((await send(apiUrl, 'POST', '/auth/sign-out')).status).toBe(401);
    expect((await send(apiUrl, 'POST', '/auth/sign-out', { token })).status).toBe(401);
  });
});

describe('when the provider is gone', () => {
  // Last in this file: it stops the provider.
  test('when the provider cannot be reached at the callback, then the page says so (503) and nothing is minted', async () => {
    const before = await signInTokens();
    const browser = new Browser();
    const start = await browser.get(`${apiUrl}/auth/oidc/login`);
    const state = new URL(start.location!).searchParams.get('state')!;
    await provider.stop();
    const answer = new URLSearchParams({ code: 'some-code', state, iss: provider.issuer });
    const page = await browser.get(`${apiUrl}/auth/oidc/callback?${answer.toString()}`);
    expect(page.status).toBe(503);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(unescape(page.body)).toMatch(/identity provider could not be reached/);
    expect(await signInTokens()).toBe(before);
  });
});

/** A browser that has started a sign-in: it holds a valid cookie. */
async function withPendingSignIn(): Promise<Browser> {
  const browser = new Browser();
  await browser.get(`${apiUrl}/auth/oidc/login`);
  return browser;
}
