/**
 * A real OpenID provider (panva's oidc-provider) for tests/oidc.test.ts, run as its own process because it is
 * ESM-only and jest loads CommonJS. One confidential client; accounts with the claims and `amr` the test gives.
 * Its login page is a plain form: `login=<account>` signs in as that account, with no password and no consent
 * screen (the client is first-party). Prints `issuer <url>` once it listens.
 *
 *   tsx tests/support/oidc-provider.mts '{"clientId":…,"clientSecret":…,"redirectUri":…,"accounts":{…}}'
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type JWK } from 'oidc-provider';
import type { ProviderOptions } from './oidc.js';

const options = JSON.parse(process.argv[2] ?? '{}') as ProviderOptions;
const SCOPES = 'openid profile';

const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: options.clientId,
      client_secret: options.clientSecret,
      redirect_uris: [options.redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  jwks: { keys: [{ ...(privateKey.export({ format: 'jwk' }) as JWK), kid: 'test', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // `amr` in every ID token, as the agency's providers send it (oidc-provider's own default: only when requested).
  claims: { openid: ['sub', 'amr'], profile: ['name', 'preferred_username', 'handoff_agency', 'handoff_role'] },
  // What the agency's providers do: the profile claims in the ID token itself, not only at userinfo.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  async findAccount(_ctx, sub) {
    const account = options.accounts[sub];
    return account && { accountId: sub, claims: () => ({ sub, ...account.claims }) };
  },
  // First-party client: every signed-in account grants it the scopes at once, so there is no consent prompt.
  async loadExistingGrant(ctx) {
    const accountId = ctx.oidc.session?.accountId;
    if (!accountId || !ctx.oidc.client) return undefined;
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId });
    grant.addOIDCScope(SCOPES);
    await grant.save();
    return grant;
  },
});

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(html);
}

async function formOf(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, submit: boolean): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'not this interaction');
  if (!submit) {
    return send(
      res,
      200,
      `<!doctype html><form method="post" action="/interaction/${uid}/login"><input name="login"><button>Sign in</button></form>`,
    );
  }
  const login = (await formOf(req)).get('login') ?? '';
  const account = options.accounts[login];
  if (!account) return send(res, 401, 'no such account');
  await provider.interactionFinished(req, res, { login: { accountId: login, amr: account.amr } });
}

const callback = provider.callback();
server.on('request', (req: IncomingMessage, res: ServerResponse) => {
  const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(new URL(req.url ?? '/', issuer).pathname);
  if (!match) return void callback(req, res);
  interaction(req, res, match[1]!, match[2] !== undefined && req.method === 'POST').catch((error: unknown) =>
    send(res, 400, String(error)),
  );
});

process.stdout.write(`issuer ${issuer}\n`);
