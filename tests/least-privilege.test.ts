import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { sql } from 'kysely';
import { appendAuditEvent, integrateAuditChains, verifyChain } from '../db/audit';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { migrateDatabase } from '../db/migrate';
import { freePort } from '../scripts/dev-services';
import { CaseDriver } from './support/cases';
import { TEST_DIR, testContext } from './support/context';
import { startApiProcess } from './support/oidc';
import { TEST_PAYLOAD_KEYS } from './support/payload-keys';
import { type TestStack, startStack } from './support/stack';

/*
 * Issue 13: the worker and the API log in as a role that may read and append the audit trail and nothing more.
 * Every attempt below is made with the service's own credentials (the URL the suite hands the stack), in a
 * transaction that never commits, so that an attempt that got through would be reported and undone.
 */

const ROOT = resolve(__dirname, '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

let service: DatabaseHandle;
let owner: DatabaseHandle;
let ownerRole: string;
/** The trail as it stood before the attempts: other files append meanwhile, so only these rows are compared. */
let trailSeqs: string[];
let contentsBefore: string;

class Allowed extends Error {}

/** Runs `statement` as the service and rolls it back; answers PostgreSQL's refusal, or 'allowed'. */
async function attempt(statement: string): Promise<string> {
  try {
    await service.db.transaction().execute(async (trx) => {
      await sql.raw(statement).execute(trx);
      throw new Allowed();
    });
  } catch (error) {
    return error instanceof Allowed ? 'allowed' : (error as Error).message;
  }
  return 'allowed';
}

/** The events as they stand, by seq (a list taken once: seqs come from a sequence, not in commit order). */
async function trailOf(seqs: string[]): Promise<string> {
  const { rows } = await sql<{ md5: string; n: number }>`
    select md5(string_agg(e::text, E'\n' order by e.seq)) as md5, count(*)::int as n
      from audit_events e where e.seq = any(${seqs}::bigint[])`.execute(owner.db);
  return `${rows[0]!.n}:${rows[0]!.md5}`;
}

beforeAll(async () => {
  const context = testContext();
  service = openDatabase(context.databaseUrl, { poolSize: 2 });
  owner = openDatabase(context.ownerUrl, { poolSize: 1 });
  ownerRole = decodeURIComponent(new URL(context.ownerUrl).username);
  const appended = await service.db.transaction().execute((trx) =>
    appendAuditEvent(trx, {
      eventKey: `least-privilege:${process.pid}`,
      actor: { id: 'staff-1', role: 'staff' },
      action: 'test.event',
      outcome: 'done',
      after: { note: 'the row every attempt aims at' },
    }),
  );
  await integrateAuditChains(service.db);
  const { rows } = await sql<{ seq: string }>`select seq::text from audit_events where seq <= ${appended.seq}`.execute(
    owner.db,
  );
  trailSeqs = rows.map((r) => r.seq);
  contentsBefore = await trailOf(trailSeqs);
});

afterAll(async () => {
  await service?.close();
  await owner?.close();
});

const forged = `outcome_reason = 'forged'`;

test.each<[string, string, RegExp]>([
  ['UPDATE', `update audit_events set ${forged}`, /permission denied for table audit_events/],
  ['DELETE', 'delete from audit_events', /permission denied for table audit_events/],
  ['TRUNCATE', 'truncate audit_events', /permission denied for table audit_events/],
  [
    'an upsert onto an event',
    `insert into audit_events select * from audit_events order by seq desc limit 1
     on conflict (event_key) do update set ${forged}`,
    /permission denied for table audit_events/,
  ],
  ['UPDATE of a chain entry', `update audit_chain set hash = prev_hash`, /permission denied for table audit_chain/],
  ['DELETE of a chain entry', 'delete from audit_chain', /permission denied for table audit_chain/],
  ['TRUNCATE of the chains', 'truncate audit_chain', /permission denied for table audit_chain/],
  ['DISABLE TRIGGER on the chains', 'alter table audit_chain disable trigger all', /owner/],
  ['ALTER TABLE … DISABLE TRIGGER', 'alter table audit_events disable trigger audit_events_no_update_delete', /owner/],
  ['ALTER TABLE … DISABLE TRIGGER ALL', 'alter table audit_events disable trigger all', /owner/],
  ['DROP TRIGGER', 'drop trigger audit_events_no_update_delete on audit_events', /owner/],
  [
    'CREATE OR REPLACE of the trigger function',
    `create or replace function audit_events_append_only() returns trigger language plpgsql
     as $$ begin return null; end $$`,
    /owner|permission denied/,
  ],
  ['DROP FUNCTION … CASCADE', 'drop function audit_events_append_only() cascade', /owner/],
  ['ALTER TABLE … OWNER TO itself', 'alter table audit_events owner to current_user', /owner/],
  ['ALTER TABLE … RENAME', 'alter table audit_events rename to audit_events_old', /owner/],
  ['DROP TABLE', 'drop table audit_events', /owner/],
  ['CREATE RULE', 'create rule forge as on update to audit_events do instead nothing', /owner/],
  [
    'SET session_replication_role = replica (triggers off)',
    'set session_replication_role = replica',
    /permission denied to set parameter/,
  ],
  ['a table of its own in the schema', 'create table public.audit_events_shadow (seq bigint)', /permission denied/],
  ['CREATE ROLE', 'create role intruder login', /permission denied to create role/],
  ['ALTER ROLE … SUPERUSER', 'alter role current_user superuser', /permission denied/],
])('when the service tries %s, then PostgreSQL refuses it', async (_what, statement, refusal) => {
  expect(await attempt(statement)).toMatch(refusal);
});

test("when the service tries to become the schema's owner, by SET ROLE or by granting itself the role, then PostgreSQL refuses it", async () => {
  expect(await attempt(`set role ${ownerRole}`)).toMatch(/permission denied to set role/);
  expect(await attempt(`grant ${ownerRole} to current_user`)).toMatch(/permission denied to grant role/);
});

test('when the service grants itself UPDATE, DELETE and TRUNCATE on the audit table, then it is granted nothing', async () => {
  // PostgreSQL answers a grant without the right to give it with a warning, not an error: what counts is after.
  await sql`grant update, delete, truncate on audit_events to current_user`.execute(service.db);
  const { rows } = await sql<{ may: boolean }>`
    select has_table_privilege('audit_events', 'UPDATE, DELETE, TRUNCATE') as may`.execute(service.db);
  expect(rows[0]!.may).toBe(false);
  expect(await attempt(`update audit_events set ${forged}`)).toMatch(/permission denied/);
});

test("when the service's role is looked at, then it is no superuser, owns nothing, may create no role or database, and is no member of the owner", async () => {
  const { rows } = await sql<Record<string, unknown>>`
    select r.rolsuper as superuser, r.rolcreaterole as createrole, r.rolcreatedb as createdb,
           r.rolbypassrls as bypassrls, r.rolreplication as replication,
           pg_has_role(current_user, ${ownerRole}, 'MEMBER') as owner_member,
           (select count(*)::int from pg_class c where c.relowner = r.oid) as owns_relations,
           (select count(*)::int from pg_proc p where p.proowner = r.oid) as owns_functions
      from pg_roles r where r.rolname = current_user`.execute(service.db);
  expect(rows[0]).toEqual({
    superuser: false,
    createrole: false,
    createdb: false,
    bypassrls: false,
    replication: false,
    owner_member: false,
    owns_relations: 0,
    owns_functions: 0,
  });
});

test('when every attempt has been made, then the trail is unchanged, whole, and still guarded by its owner', async () => {
  expect(await trailOf(trailSeqs)).toBe(contentsBefore);
  expect((await verifyChain(service.db, null, { chains: [''], full: true })).ok).toBe(true);
  const { rows } = await sql<{ owner: string; triggers: string[]; guard: string }>`
    select c.relowner::regrole::text as owner,
           (select array_agg(t.tgname || ':' || t.tgenabled::text order by t.tgname) from pg_trigger t
             where t.tgrelid = c.oid and not t.tgisinternal) as triggers,
           (select p.prosrc from pg_proc p where p.proname = 'audit_events_append_only') as guard
      from pg_class c where c.oid = 'audit_events'::regclass`.execute(owner.db);
  expect(rows[0]).toMatchObject({
    owner: ownerRole,
    triggers: ['audit_events_no_truncate:O', 'audit_events_no_update_delete:O'],
    guard: expect.stringMatching(/append-only/),
  });
});

test('when the service appends an audit event, then it is chained onto the trail and reads back', async () => {
  const key = `least-privilege:append:${process.pid}`;
  const appended = await service.db.transaction().execute((trx) =>
    appendAuditEvent(trx, {
      eventKey: key,
      actor: { id: 'staff-1', role: 'staff' },
      action: 'test.event',
      outcome: 'done',
    }),
  );
  expect(appended.created).toBe(true);
  const row = await service.db
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .where('event_key', '=', key)
    .executeTakeFirstOrThrow();
  expect(row).toEqual({ seq: appended.seq, hash: appended.hash });
});

test('when someone grants the service UPDATE on the audit table by hand, then the next migration takes it back', async () => {
  const serviceRole = decodeURIComponent(new URL(testContext().databaseUrl).username);
  await sql`grant update on audit_events to ${sql.id(serviceRole)}`.execute(owner.db);
  const may = async () =>
    (await sql<{ may: boolean }>`select has_table_privilege('audit_events', 'UPDATE') as may`.execute(service.db))
      .rows[0]!.may;
  expect(await may()).toBe(true);
  expect(await migrateDatabase(testContext().ownerUrl, testContext().databaseUrl)).toEqual({
    applied: [],
    serviceRole,
  });
  expect(await may()).toBe(false);
});

describe('the running service', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  test("when a case is opened and reviewed through the API on the service's credentials, then it moves on and every step is in the trail", async () => {
    const { rows } = await sql<{ role: string }>`select current_user as role`.execute(stack.db);
    expect(rows[0]!.role).toBe(decodeURIComponent(new URL(testContext().databaseUrl).username));
    const c = await CaseDriver.open(stack);
    await c.approve();
    await c.until((v) => v.step === 'client_conversation');
    const actions = await stack.db
      .selectFrom('audit_events')
      .select('action')
      .where('case_id', '=', c.caseId)
      .execute();
    expect(actions.map((a) => a.action)).toEqual(expect.arrayContaining(['case.opened', 'decision.approved']));
  });
});

describe('starting in production', () => {
  const context = testContext();
  /** The suite's database, as the superuser that made it. */
  const asSuperuser = () => {
    const url = new URL(context.superuserUrl);
    url.pathname = new URL(context.databaseUrl).pathname;
    return url.toString();
  };
  const settings = (databaseUrl: string): Record<string, string> => ({
    NODE_ENV: 'production',
    PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: join(TEST_DIR, 'least-privilege'),
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: context.temporalAddress,
    // The suite's dev server speaks plain gRPC; TLS to Temporal is another test's concern.
    TEMPORAL_TLS_DISABLED: 'true',
    TEMPORAL_TASK_QUEUE: `least-privilege-${process.pid}`,
  });
  const run = (script: string, databaseUrl: string) =>
    spawnSync(TSX, [script], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...settings(databaseUrl) },
      encoding: 'utf8',
      timeout: 30_000,
    });

  test.each<[string, string, string, () => string, RegExp]>([
    ['the API', "the schema's owner", 'api/main.ts', () => context.ownerUrl, /owns audit_events/],
    ['the API', 'a superuser', 'api/main.ts', asSuperuser, /is a superuser/],
    ['the worker', "the schema's owner", 'worker/main.ts', () => context.ownerUrl, /owns audit_events/],
  ])('when %s is started in production as %s, then it refuses to start and says why', (_who, _as, script, url, why) => {
    const result = run(script, url());
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/refusing a database role that could change the audit trail/);
    expect(result.stderr).toMatch(why);
    expect(result.stderr).not.toContain(new URL(context.ownerUrl).password);
  });

  test("when the API is started in production on the service's credentials, then it serves", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const api = await startApiProcess({ ...settings(context.databaseUrl), PORT: String(port) }, url);
    try {
      expect((await fetch(`${url}/auth/config`)).status).toBe(200);
    } finally {
      await api.stop();
    }
  });
});
