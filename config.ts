import { z } from 'zod';

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

const booleanFlag = z.enum(['true', 'false']).transform((value) => value === 'true');

const TLS_FILES = ['TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY'] as const;

const isHttpUrl = (value: string) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol);

const isHostPort = (value: string) => /^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/.test(value);

/** An id a key goes by in the payloads it seals: letters, digits, `.`, `_` and `-`. */
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface PayloadKey {
  id: string;
  /** 32 bytes (AES-256), base64. */
  key: string;
}

/** `id:base64key,id:base64key`: every key a Temporal payload may be sealed with. Never echoes a key in an error. */
const payloadKeys = optionalString.transform((value, ctx): PayloadKey[] | undefined => {
  if (value === undefined) return undefined;
  const keys: PayloadKey[] = [];
  for (const [n, entry] of value.split(',').entries()) {
    const colon = entry.indexOf(':');
    const id = entry.slice(0, colon).trim();
    const key = entry.slice(colon + 1).trim();
    const problem =
      colon < 0 || !KEY_ID.test(id)
        ? `entry ${n + 1} is not <id>:<base64 key> with an id of letters, digits, ".", "_" or "-"`
        : !BASE64.test(key) || Buffer.from(key, 'base64').toString('base64') !== key
          ? `the key of "${id}" is not base64`
          : Buffer.from(key, 'base64').length !== 32
            ? `the key of "${id}" is ${Buffer.from(key, 'base64').length} bytes; AES-256 takes 32 (openssl rand -base64 32)`
            : keys.some((k) => k.id === id)
              ? `"${id}" is listed twice`
              : undefined;
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    keys.push({ id, key });
  }
  return keys;
});

const schema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    HOST: z.string().default('127.0.0.1'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
    /** The service's role (it may only read and append the audit trail); unset: `npm start` runs an embedded PostgreSQL. */
    DATABASE_URL: optionalString,
    /** The schema owner's role, for migrations only; unset: DATABASE_URL. */
    MIGRATION_DATABASE_URL: optionalString,
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
    /** Unset: `npm start` runs a Temporal dev server. */
    TEMPORAL_ADDRESS: optionalString,
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    TEMPORAL_TASK_QUEUE: z.string().min(1).default('handoff'),
    /** Requests a minute per API token, shared by every API replica. */
    RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(600),
    /** Requests a minute per client address (an IPv6 /64), counted before the token is checked. */
    RATE_LIMIT_PER_ADDRESS_PER_MINUTE: z.coerce.number().int().min(1).default(3000),
    /** How long an Idempotency-Key is kept; past it, the same key makes a new request. */
    IDEMPOTENCY_KEY_HOURS: z.coerce.number().int().min(1).max(720).default(24),
    DATA_DIR: z.string().min(1).default('.data'),
    /** Where the audit chain's head is written out of the database; unset: DATA_DIR/audit-anchors.ndjson. */
    AUDIT_ANCHOR_FILE: optionalString,
    AUDIT_ANCHOR_INTERVAL_SECONDS: z.coerce.number().int().min(5).default(300),
    RECONCILE_INTERVAL_MINUTES: z.coerce.number().int().min(1).max(10_080).default(60),
    EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(1).max(65535).default(5433),
    TEMPORAL_DEV_PORT: z.coerce.number().int().min(1).max(65535).default(7233),
    TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
    /** Where email goes (`smtp://host:port`, `smtps://user:pass@host`); unset: `npm start` runs a local catcher. */
    SMTP_URL: optionalString,
    MAIL_FROM: z.string().min(3).default('handoff@localhost'),
    /** The API's address as staff reach it, for links in emails; unset: http://HOST:PORT. */
    PUBLIC_URL: optionalString,
    OUTBOX_POLL_SECONDS: z.coerce.number().min(1).max(3600).default(5),
    /**
     * How long a message a sender claimed stays its own: a sender that dies mid-batch leaves its messages to go out
     * again after this. Above the time one send can take (the SMTP timeouts allow 100 s).
     */
    OUTBOX_LEASE_SECONDS: z.coerce.number().int().min(10).max(3600).default(300),
    /** The agency's hour (0-23) from which each user's daily digest of their queue goes out. */
    DIGEST_HOUR: z.coerce.number().int().min(0).max(23).default(7),
    /** The bearer token Prometheus scrapes /metrics with (16+ characters); unset: /metrics is off. */
    METRICS_TOKEN: z.string().min(16).optional(),
    MAIL_CATCHER_PORT: z.coerce.number().int().min(0).max(65535).default(1025),
    /** A workflow bundle made ahead of time (bundleWorkflowCode); unset: the worker bundles at start (seconds). */
    WORKFLOW_BUNDLE: optionalString,
    /**
     * Workflows a worker keeps in memory between their tasks (the SDK's sticky cache); one evicted is replayed from
     * its history at its next event. Cases wait for weeks: a small cache costs little time and bounds memory. At
     * 100, with the image's 256 MB heap, a worker opening a 3,000-client transfer peaked at 360 MB; at 500 it
     * peaked at 516 MB and took longer, collecting garbage (bench/results, README "Scaling").
     */
    WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).max(100_000).default(100),
    /** A file the worker touches while it polls and its database answers; unset: none (the image sets one). */
    WORKER_HEALTH_FILE: optionalString,
    /** The CA that signed the Temporal frontend's certificate (PEM file); with CERT and KEY, every connection is mTLS. */
    TEMPORAL_TLS_CA: optionalString,
    /** This process's client certificate (PEM file), signed by a CA the frontend trusts. */
    TEMPORAL_TLS_CERT: optionalString,
    /** The private key of TEMPORAL_TLS_CERT (PEM file). */
    TEMPORAL_TLS_KEY: optionalString,
    /** The name the frontend's certificate is checked against; unset: the host of TEMPORAL_ADDRESS. */
    TEMPORAL_TLS_SERVER_NAME: optionalString,
    /** In production, plain gRPC to Temporal only when this says so; a deploy cannot drop TLS by forgetting it. */
    TEMPORAL_TLS_DISABLED: booleanFlag.default(false),
    /** The agency's OpenID provider (its issuer URL); unset: sign-in by API token only. */
    OIDC_ISSUER: optionalString.refine((value) => value === undefined || isHttpUrl(value), 'must be an http(s) URL'),
    OIDC_CLIENT_ID: optionalString,
    OIDC_CLIENT_SECRET: optionalString,
    /** Where the provider sends the browser back; unset: PUBLIC_URL/auth/oidc/callback. */
    OIDC_REDIRECT_URL: optionalString.refine(
      (value) => value === undefined || isHttpUrl(value),
      'must be an http(s) URL',
    ),
    /** Signs the short-lived cookie that carries a sign-in from its start to its callback, on any API replica. */
    OIDC_COOKIE_SECRET: z.string().min(32, 'must be 32 characters or more').optional(),
    /** The ID token claims that name the handoff user, their agency and their role. */
    OIDC_USER_CLAIM: z.string().min(1).default('preferred_username'),
    OIDC_AGENCY_CLAIM: z.string().min(1).default('handoff_agency'),
    OIDC_ROLE_CLAIM: z.string().min(1).default('handoff_role'),
    /** Refuse a sign-in whose ID token does not list `mfa` in `amr`. */
    OIDC_REQUIRE_MFA: booleanFlag.default(true),
    OIDC_SCOPES: z
      .string()
      .trim()
      .default('openid profile')
      .refine((value) => value.split(/\s+/).includes('openid'), 'must include openid'),
    /** The life of an API token minted at sign-in. */
    SESSION_HOURS: z.coerce.number().positive().max(168).default(8),
    /** An OTLP/HTTP collector (`http://collector:4318`) that traces go to; unset: tracing is off and not loaded. */
    OTEL_EXPORTER_OTLP_ENDPOINT: optionalString.refine(
      (value) => value === undefined || isHttpUrl(value),
      'must be an http(s) URL',
    ),
    /** The service name on traces; unset: handoff-api, handoff-worker, or handoff for `npm start`. */
    OTEL_SERVICE_NAME: optionalString,
    /** `host:port` where the worker serves the Temporal SDK's metrics to Prometheus (`/metrics`); unset: off. */
    WORKER_METRICS_ADDRESS: optionalString.refine(
      (value) => value === undefined || isHostPort(value),
      'must be host:port',
    ),
    /**
     * The keys that encrypt what the service hands Temporal (`id:base64key,…`, 32 bytes each). Unset: refused in
     * production; elsewhere a key made once under DATA_DIR (codec/index.ts).
     */
    PAYLOAD_KEYS: payloadKeys,
    /** Which of PAYLOAD_KEYS seals new payloads; unset: the first. The others still open what they sealed. */
    PAYLOAD_KEY_ID: optionalString,
    /** Origins whose pages (the Temporal UI's) may call the codec endpoint, comma-separated; unset: none. */
    CODEC_CORS_ORIGINS: optionalString.transform((value) =>
      (value ?? '')
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean),
    ),
  })
  .superRefine((env, ctx) => {
    if (!env.OIDC_ISSUER) return;
    for (const key of ['OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET', 'OIDC_COOKIE_SECRET'] as const) {
      if (!env[key]) ctx.addIssue({ code: 'custom', path: [key], message: 'must be set when OIDC_ISSUER is set' });
    }
    // Tokens and the authorization code cross this connection: plain HTTP is for a provider on a test machine.
    if (env.NODE_ENV === 'production' && !env.OIDC_ISSUER.startsWith('https://')) {
      ctx.addIssue({ code: 'custom', path: ['OIDC_ISSUER'], message: 'must be an https URL in production' });
    }
    const redirect = env.OIDC_REDIRECT_URL ?? env.PUBLIC_URL;
    if (env.NODE_ENV === 'production' && !redirect?.startsWith('https://')) {
      ctx.addIssue({
        code: 'custom',
        path: ['OIDC_REDIRECT_URL'],
        message: 'must be an https URL in production (set it, or PUBLIC_URL, to the address staff use)',
      });
    }
  })
  .superRefine((config, ctx) => {
    const given = TLS_FILES.filter((key) => config[key] !== undefined);
    const missing = TLS_FILES.filter((key) => config[key] === undefined);
    if (given.length > 0 && missing.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: [missing[0]!],
        message: `${TLS_FILES.join(', ')} go together (mutual TLS): ${given.join(' and ')} set, ${missing.join(' and ')} missing`,
      });
    }
    const tls = missing.length === 0;
    if (config.TEMPORAL_TLS_SERVER_NAME !== undefined && !tls) {
      ctx.addIssue({
        code: 'custom',
        path: ['TEMPORAL_TLS_SERVER_NAME'],
        message: `is used only with ${TLS_FILES.join(', ')}`,
      });
    }
    if (tls && config.TEMPORAL_TLS_DISABLED) {
      ctx.addIssue({
        code: 'custom',
        path: ['TEMPORAL_TLS_DISABLED'],
        message: `is true while ${TLS_FILES.join(', ')} are set: choose one`,
      });
    }
    if (given.length > 0 && config.TEMPORAL_ADDRESS === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['TEMPORAL_ADDRESS'],
        message: 'must be set with TEMPORAL_TLS_*: the dev server npm start runs speaks plain gRPC',
      });
    }
    if (
      config.NODE_ENV === 'production' &&
      config.TEMPORAL_ADDRESS !== undefined &&
      given.length === 0 &&
      !config.TEMPORAL_TLS_DISABLED
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['TEMPORAL_ADDRESS'],
        message:
          `would be reached without TLS in production: set ${TLS_FILES.join(', ')} (scripts/make-temporal-certs.sh ` +
          'makes them), or TEMPORAL_TLS_DISABLED=true to mean it',
      });
    }
  })
  .superRefine((config, ctx) => {
    if (config.PAYLOAD_KEY_ID === undefined) return;
    if (!config.PAYLOAD_KEYS?.some((k) => k.id === config.PAYLOAD_KEY_ID)) {
      ctx.addIssue({
        code: 'custom',
        path: ['PAYLOAD_KEY_ID'],
        message: `"${config.PAYLOAD_KEY_ID}" is not one of the ids in PAYLOAD_KEYS`,
      });
    }
  });

export type Config = Readonly<z.infer<typeof schema>>;

/** Reads the environment once; nothing else in the service looks at process.env. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return Object.freeze(parsed.data);
}

export function auditAnchorFile(config: Config): string {
  return config.AUDIT_ANCHOR_FILE ?? `${config.DATA_DIR}/audit-anchors.ndjson`;
}

export function publicUrl(config: Config): string {
  return config.PUBLIC_URL ?? `http://${config.HOST}:${config.PORT}`;
}

/** How the API signs staff in through the agency's OpenID provider. */
export interface OidcSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUrl: string;
  cookieSecret: string;
  claims: { user: string; agency: string; role: string };
  requireMfa: boolean;
  scopes: string;
  sessionHours: number;
}

/** The OpenID Connect settings, or undefined when OIDC_ISSUER is unset (sign-in by API token only). */
export function oidcSettings(config: Config): OidcSettings | undefined {
  const { OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_COOKIE_SECRET } = config;
  if (!OIDC_ISSUER || !OIDC_CLIENT_ID || !OIDC_CLIENT_SECRET || !OIDC_COOKIE_SECRET) return undefined;
  return {
    issuer: OIDC_ISSUER,
    clientId: OIDC_CLIENT_ID,
    clientSecret: OIDC_CLIENT_SECRET,
    redirectUrl: config.OIDC_REDIRECT_URL ?? `${publicUrl(config).replace(/\/+$/, '')}/auth/oidc/callback`,
    cookieSecret: OIDC_COOKIE_SECRET,
    claims: { user: config.OIDC_USER_CLAIM, agency: config.OIDC_AGENCY_CLAIM, role: config.OIDC_ROLE_CLAIM },
    requireMfa: config.OIDC_REQUIRE_MFA,
    scopes: config.OIDC_SCOPES,
    sessionHours: config.SESSION_HOURS,
  };
}

/** For the processes that cannot start embedded services: the worker and API run alone. */
export function requireConnections(config: Config): Config & {
  DATABASE_URL: string;
  TEMPORAL_ADDRESS: string;
} {
  const missing = (['DATABASE_URL', 'TEMPORAL_ADDRESS'] as const).filter((k) => !config[k]);
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(' and ')} must be set to run this process on its own (npm start runs embedded services instead)`,
    );
  }
  return config as Config & { DATABASE_URL: string; TEMPORAL_ADDRESS: string };
}
