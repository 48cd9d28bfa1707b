import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { type CookieOptions, type Request, type Response, Router } from 'express';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { OidcSettings } from '../config';
import { appendAuditEvent } from '../db/audit';
import type { Database } from '../db/schema';
import { createToken, findUser, revokeToken } from '../db/users';
import type { Role } from '../domain/case';
import { type ClaimedIdentity, admit, claimedIdentity } from '../domain/sign-in';
import { authenticate, userOf } from './auth';
import { problem } from './problem';
import { authConfigView } from './views';

// openid-client is ESM-only and this service is CommonJS. tsc (module Node16) and tsx leave this import() to
// Node, which loads ESM, and it runs only once OIDC is configured. Under jest, swc turns it into a require() that
// cannot load ESM: the tests run the OIDC-enabled API as a tsx process (tests/oidc.test.ts).
type OpenIdClient = typeof import('openid-client', { with: { 'resolution-mode': 'import' } });
type ProviderConfiguration = Awaited<ReturnType<OpenIdClient['discovery']>>;
const loadOpenIdClient = (): Promise<OpenIdClient> => import('openid-client');

/** The label of the tokens minted at sign-in: the only ones sign-out revokes. */
export const SIGN_IN_LABEL = 'oidc';

const COOKIE = 'handoff_oidc';
const COOKIE_PATH = '/auth/oidc';
const SIGN_IN_MINUTES = 10;
const MAX_RETURN_LENGTH = 1000;

/** What a sign-in carries from its start to its callback, in a signed cookie, so any replica can finish it. */
const pendingSignIn = z.strictObject({
  verifier: z.string(),
  state: z.string(),
  nonce: z.string(),
  returnTo: z.string(),
  expires: z.number(),
});
type PendingSignIn = z.infer<typeof pendingSignIn>;

/** A path of this site: `/…`, never `//host` nor `/\host`, which browsers read as another site. */
function isSameSitePath(value: string): boolean {
  // Browsers drop tabs and newlines from a URL: `/\t/evil.example` would become `//evil.example`.
  if (!/^\/(?![/\\])/.test(value) || /[\p{Cc}\\]/u.test(value)) return false;
  const base = new URL('https://handoff.invalid');
  return new URL(value, base).origin === base.origin;
}

const loginQuery = z.object({
  return: z.string().max(MAX_RETURN_LENGTH).refine(isSameSitePath).optional().catch(undefined),
});

const callbackQuery = z.object({
  code: z.string().max(4096).optional(),
  state: z.string().max(1024).optional(),
  error: z.string().max(1024).optional(),
});

function sign(payload: string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

function seal(value: PendingSignIn, secret: string): string {
  const payload = Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${payload}.${sign(payload, secret)}`;
}

/** The pending sign-in in the cookie, if its signature holds and it has not expired. */
function unseal(sealed: string | undefined, secret: string): PendingSignIn | undefined {
  const [payload, signature, ...rest] = (sealed ?? '').split('.');
  if (!payload || !signature || rest.length > 0) return undefined;
  const expected = Buffer.from(sign(payload, secret));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const pending = pendingSignIn.safeParse(parsed);
  return pending.success && pending.data.expires > Date.now() ? pending.data : undefined;
}

function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function cookieOptions(settings: OidcSettings): CookieOptions {
  return { httpOnly: true, sameSite: 'lax', secure: settings.redirectUrl.startsWith('https:'), path: COOKIE_PATH };
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// No inline script or style: the page's one script is a file of the site.
const PAGE_HEADERS = {
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
};

function sendPage(res: Response, status: number, html: string): void {
  res.status(status).set(PAGE_HEADERS).type('html').send(html);
}

function signedInPage(token: string, returnTo: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing in — handoff</title></head><body><div id="handoff-signin" data-token="${escapeHtml(token)}" data-return="${escapeHtml(returnTo)}"></div><p>Signing you in…</p><script type="module" src="/ui/signin.js"></script></body></html>`;
}

function refusedPage(reason: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not signed in — handoff</title></head><body><h1>You are not signed in</h1><p>${escapeHtml(reason)}</p><p><a href="/">Back to handoff</a></p></body></html>`;
}

/** An OAuth error code as the provider sent it, if it looks like one; anything else is not shown. */
const errorCode = (value: unknown) => (typeof value === 'string' && /^[\w.-]{1,64}$/.test(value) ? value : 'error');

const PROVIDER_UNREACHABLE = 'the identity provider could not be reached or did not answer as one; try again shortly';

/**
 * Sign-in through the agency's OpenID provider (authorization code, PKCE, state and nonce), ending in a handoff API
 * token for the user the agency's own record names; sign-out; and which sign-ins this API offers. Public routes,
 * mounted before `authenticate`.
 */
export function oidcRoutes(deps: {
  db: Kysely<Database>;
  logger: Logger;
  oidc: OidcSettings | undefined;
  devTokens: boolean;
}): Router {
  const { db, logger, oidc } = deps;
  const router = Router();

  const settings = (): OidcSettings => {
    if (!oidc) {
      throw problem(404, 'sign-in through an identity provider is off here (no OIDC_ISSUER); use an API token');
    }
    return oidc;
  };

  // The provider's metadata, discovered once per process (again after a failure, which leaves it undefined).
  let discovered: Promise<ProviderConfiguration | undefined> | undefined;
  const providerOf = async (oidcSettings: OidcSettings) => {
    const client = await loadOpenIdClient();
    discovered ??= client
      .discovery(
        new URL(oidcSettings.issuer),
        oidcSettings.clientId,
        { client_secret: oidcSettings.clientSecret },
        client.ClientSecretBasic(oidcSettings.clientSecret),
        {
          timeout: 10,
          // config.ts allows a plain-HTTP issuer outside production only.
          ...(oidcSettings.issuer.startsWith('http:') ? { execute: [client.allowInsecureRequests] } : {}),
        },
      )
      .catch((error: unknown) => {
        logger.warn({ err: (error as Error).message }, 'identity provider discovery failed');
        discovered = undefined;
        return undefined;
      });
    const configuration = await discovered;
    return configuration && { client, configuration };
  };

  /** Which sign-ins this API offers, for the web page: the identity provider, pasted tokens, or both. */
  router.get('/auth/config', (_req, res) => {
    const body: z.infer<typeof authConfigView> = { oidc: oidc !== undefined, devTokens: deps.devTokens };
    res.json(body);
  });

  /** Starts a sign-in: 303 to the provider, with the sign-in's secrets in a signed, short-lived cookie. */
  router.get('/auth/oidc/login', async (req, res) => {
    const oidcSettings = settings();
    const returnTo = loginQuery.parse(req.query).return ?? '/';
    const provider = await providerOf(oidcSettings);
    if (!provider) throw problem(503, PROVIDER_UNREACHABLE);
    const { client, configuration } = provider;
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const authorization = client.buildAuthorizationUrl(configuration, {
      redirect_uri: oidcSettings.redirectUrl,
      scope: oidcSettings.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const pending = { verifier, state, nonce, returnTo, expires: Date.now() + SIGN_IN_MINUTES * 60_000 };
    res.cookie(COOKIE, seal(pending, oidcSettings.cookieSecret), {
      ...cookieOptions(oidcSettings),
      maxAge: SIGN_IN_MINUTES * 60_000,
    });
    res.set('Cache-Control', 'no-store').redirect(303, authorization.href);
  });

  /** A refused sign-in by someone the provider identified is audited; before that, nobody is known to audit. */
  async function refuse(
    req: Request,
    res: Response,
    refusal: { status: number; reason: string; claimed?: ClaimedIdentity; role?: Role },
  ): Promise<void> {
    const { claimed } = refusal;
    // Why an identified person was refused goes to the audit trail only; the other reasons name nobody.
    logger.warn(
      { reqId: req.id, status: refusal.status, ...(claimed ? { user: claimed.userId } : { reason: refusal.reason }) },
      'sign-in refused',
    );
    if (claimed) {
      await appendAuditEvent(db, {
        eventKey: `sign-in:refused:${randomUUID()}`,
        agencyId: claimed.agencyId,
        // The role is the record's, when there is one: the provider's claim is what may be wrong.
        actor: { id: claimed.userId, role: refusal.role ?? 'system' },
        action: 'auth.sign_in',
        outcome: 'refused',
        outcomeReason: refusal.reason,
        requestId: req.id,
        sourceAddress: req.ip ?? null,
        after: { issuer: oidc?.issuer, subject: claimed.subject },
      });
    }
    sendPage(res, refusal.status, refusedPage(refusal.reason));
  }

  /** Finishes a sign-in: checks the provider's answer and the agency's record, then mints a handoff token. */
  router.get('/auth/oidc/callback', async (req, res) => {
    const oidcSettings = settings();
    const pending = unseal(cookieOf(req, COOKIE), oidcSettings.cookieSecret);
    res.clearCookie(COOKIE, cookieOptions(oidcSettings));
    const query = callbackQuery.safeParse(req.query);
    if (!query.success) {
      return refuse(req, res, { status: 400, reason: 'the answer from your identity provider could not be read.' });
    }
    if (!pending) {
      return refuse(req, res, {
        status: 400,
        reason: `this sign-in was started more than ${SIGN_IN_MINUTES} minutes ago or in another browser; start again.`,
      });
    }
    if (query.data.error !== undefined) {
      return refuse(req, res, {
        status: 403,
        reason: `your identity provider did not sign you in (${errorCode(query.data.error)}).`,
      });
    }
    if (query.data.state !== pending.state) {
      return refuse(req, res, {
        status: 400,
        reason: 'this answer from your identity provider belongs to another sign-in; start again.',
      });
    }
    if (!query.data.code) {
      return refuse(req, res, {
        status: 400,
        reason: 'your identity provider sent no authorization code; start again.',
      });
    }

    const provider = await providerOf(oidcSettings);
    if (!provider) return refuse(req, res, { status: 503, reason: `${PROVIDER_UNREACHABLE}.` });
    const { client, configuration } = provider;
    // The provider answered to the redirect URL as configured, whatever proxy the request came through.
    const answer = new URL(oidcSettings.redirectUrl);
    answer.search = new URL(req.originalUrl, answer).search;
    let claims: Record<string, unknown> | undefined;
    try {
      const tokens = await client.authorizationCodeGrant(configuration, answer, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      logger.warn({ reqId: req.id, err: (error as Error).name, code }, 'authorization code exchange failed');
      if (error instanceof client.AuthorizationResponseError) {
        return refuse(req, res, {
          status: 403,
          reason: `your identity provider did not sign you in (${errorCode(error.error)}).`,
        });
      }
      if (error instanceof client.ResponseBodyError) {
        return refuse(req, res, {
          status: 400,
          reason: `your identity provider refused this sign-in's code (${errorCode(error.error)}): it was used already or belongs to another sign-in; start again.`,
        });
      }
      if (error instanceof client.ClientError) {
        return refuse(req, res, {
          status: 400,
          reason: 'the answer from your identity provider did not pass verification; start again.',
        });
      }
      if (
        (error instanceof TypeError && error.message === 'fetch failed') ||
        (error as Error).name === 'TimeoutError'
      ) {
        return refuse(req, res, { status: 503, reason: `${PROVIDER_UNREACHABLE}.` });
      }
      throw error;
    }
    if (!claims) {
      return refuse(req, res, { status: 400, reason: 'your identity provider sent no ID token; start again.' });
    }

    const identity = claimedIdentity(claims, oidcSettings.claims);
    if ('refused' in identity) return refuse(req, res, { status: 403, reason: identity.refused });
    const claimed = identity.ok;
    const record = await findUser(db, claimed.agencyId, claimed.userId);
    const admitted = admit(claimed, record, oidcSettings);
    if ('refused' in admitted) {
      return refuse(req, res, {
        status: 403,
        reason: admitted.refused,
        claimed,
        ...(record ? { role: record.role } : {}),
      });
    }

    const user = admitted.ok;
    const session = await db.transaction().execute(async (trx) => {
      const created = await createToken(
        trx,
        { agencyId: user.agency_id, userId: user.user_id },
        { label: SIGN_IN_LABEL, hours: oidcSettings.sessionHours },
      );
      await appendAuditEvent(trx, {
        eventKey: `token:${created.tokenId}:signed_in`,
        agencyId: user.agency_id,
        actor: { id: user.user_id, role: user.role },
        action: 'auth.signed_in',
        outcome: 'done',
        requestId: req.id,
        sourceAddress: req.ip ?? null,
        after: {
          tokenId: created.tokenId,
          expiresAt: created.expiresAt.toISOString(),
          issuer: oidcSettings.issuer,
          subject: claimed.subject,
        },
      });
      return created;
    });
    sendPage(res, 200, signedInPage(session.token, pending.returnTo));
  });

  /** Signs out: revokes the calling token if sign-in minted it; an API token is left alone. 204 either way. */
  router.post('/auth/sign-out', authenticate(db), async (req, res) => {
    const user = userOf(req);
    await db.transaction().execute(async (trx) => {
      if (!(await revokeToken(trx, user.agencyId, req.tokenId!, { label: SIGN_IN_LABEL }))) return;
      await appendAuditEvent(trx, {
        eventKey: `token:${req.tokenId}:signed_out`,
        agencyId: user.agencyId,
        actor: { id: user.id, role: user.role },
        action: 'auth.signed_out',
        outcome: 'done',
        requestId: req.id,
        sourceAddress: req.ip ?? null,
      });
    });
    res.status(204).end();
  });

  return router;
}
