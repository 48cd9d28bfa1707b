import { z } from 'zod';

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

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
    /** Unset: `npm start` runs an embedded PostgreSQL under DATA_DIR. */
    DATABASE_URL: optionalString,
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
    /** Unset: `npm start` runs a Temporal dev server. */
    TEMPORAL_ADDRESS: optionalString,
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    TEMPORAL_TASK_QUEUE: z.string().min(1).default('handoff'),
    RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(600),
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
    /** The agency's hour (0-23) from which each user's daily digest of their queue goes out. */
    DIGEST_HOUR: z.coerce.number().int().min(0).max(23).default(7),
    /** The bearer token Prometheus scrapes /metrics with (16+ characters); unset: /metrics is off. */
    METRICS_TOKEN: z.string().min(16).optional(),
    MAIL_CATCHER_PORT: z.coerce.number().int().min(0).max(65535).default(1025),
    /** A workflow bundle made ahead of time (bundleWorkflowCode); unset: the worker bundles at start (seconds). */
    WORKFLOW_BUNDLE: optionalString,
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
