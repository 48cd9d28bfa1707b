import { z } from 'zod';

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

const schema = z.object({
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
  /** The agency's hour (0-23) from which each user's daily digest of their queue goes out. */
  DIGEST_HOUR: z.coerce.number().int().min(0).max(23).default(7),
  /** The bearer token Prometheus scrapes /metrics with (16+ characters); unset: /metrics is off. */
  METRICS_TOKEN: z.string().min(16).optional(),
  MAIL_CATCHER_PORT: z.coerce.number().int().min(0).max(65535).default(1025),
  /** A workflow bundle made ahead of time (bundleWorkflowCode); unset: the worker bundles at start (seconds). */
  WORKFLOW_BUNDLE: optionalString,
  /** A file the worker touches while it polls and its database answers; unset: none (the image sets one). */
  WORKER_HEALTH_FILE: optionalString,
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
