import { type Kysely, sql } from 'kysely';
import { Client, escapeIdentifier, escapeLiteral } from 'pg';
import { type DatabaseHandle, openDatabase } from './database';
import type { Database } from './schema';

/**
 * Two roles per database. The owner owns every table, index and function, and is used only to migrate. The
 * service (the worker, the API, the scripts) logs in as a role that owns nothing, cannot create roles, and may
 * only read and append the audit trail: its trigger, which refuses UPDATE, DELETE and TRUNCATE, can be disabled,
 * dropped or replaced by the owner alone, so the service's own credentials never reach it.
 */

/** A role that logs in. */
export interface Login {
  name: string;
  password: string;
}

export interface DatabaseLogins {
  owner: Login;
  service: Login;
}

type Privilege = 'select' | 'insert' | 'update' | 'delete';

const READ_WRITE: readonly Privilege[] = ['select', 'insert', 'update', 'delete'];
const APPEND_ONLY: readonly Privilege[] = ['select', 'insert'];

/**
 * What the service may do, table by table (a new table in schema.ts does not compile until it is named here).
 * A table not named (Kysely's migration tables, anything made by hand) is out of the service's reach.
 */
const SERVICE_PRIVILEGES: Record<keyof Database, readonly Privilege[]> = {
  // The record of everything: kept at least six years, never changed (its trigger refuses the owner too).
  audit_events: APPEND_ONLY,
  // The chains over it: appended by the integrator, guarded by the same trigger.
  audit_chain: APPEND_ONLY,
  // A queue, not the record: the integrator deletes what it has chained (a line deleted by hand leaves its event
  // in no chain, which a full verify reports).
  audit_pending: ['select', 'insert', 'delete'],
  audit_checkpoints: APPEND_ONLY,
  cases: READ_WRITE,
  agency_policies: READ_WRITE,
  referrals: READ_WRITE,
  consents: READ_WRITE,
  disclosures: READ_WRITE,
  letters: READ_WRITE,
  tasks: READ_WRITE,
  outbox: READ_WRITE,
  mail_batch_items: READ_WRITE,
  clients: READ_WRITE,
  clinicians: READ_WRITE,
  providers: READ_WRITE,
  transfers: READ_WRITE,
  proposals: READ_WRITE,
  users: READ_WRITE,
  api_tokens: READ_WRITE,
  idempotency_keys: READ_WRITE,
  rate_limit_windows: READ_WRITE,
};

/** The URL of `login` on the server and database of `url`. */
export function loginUrl(url: string, login: Login): string {
  const target = new URL(url);
  target.username = encodeURIComponent(login.name);
  target.password = encodeURIComponent(login.password);
  return target.toString();
}

/** The role a connection string logs in as. */
export function roleOf(url: string): string {
  return decodeURIComponent(new URL(url).username);
}

async function withClient<T>(url: string, run: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates the owner and the service role, or brings them to these passwords and attributes, on the server of
 * `superuserUrl` (a superuser, or a role with CREATEROLE). Roles belong to the whole server: a server shared by
 * several databases may reuse them.
 */
export async function ensureRoles(superuserUrl: string, logins: DatabaseLogins): Promise<void> {
  await withClient(superuserUrl, async (client) => {
    for (const login of [logins.owner, logins.service]) {
      const role = escapeIdentifier(login.name);
      const exists = await client.query('select 1 from pg_roles where rolname = $1', [login.name]);
      if (exists.rowCount === 0) await client.query(`create role ${role}`);
      await client.query(
        `alter role ${role} with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls
         password ${escapeLiteral(login.password)}`,
      );
    }
  });
}

/**
 * Readies the database of `superuserUrl` for its two roles: both may connect, only the owner may create in its
 * schema, and whatever an earlier setup made there as another role (a superuser, a single shared role) is handed
 * to the owner, so that migrations can run as the owner and grant the service its part.
 */
export async function prepareDatabase(superuserUrl: string, roles: { owner: string; service: string }): Promise<void> {
  const owner = escapeIdentifier(roles.owner);
  const service = escapeIdentifier(roles.service);
  await withClient(superuserUrl, async (client) => {
    await client.query('begin');
    const { rows: here } = await client.query<{ name: string }>('select current_database() as name');
    await client.query(`grant connect on database ${escapeIdentifier(here[0]!.name)} to ${owner}, ${service}`);
    await client.query('revoke create on schema public from public');
    await client.query(`grant usage, create on schema public to ${owner}`);
    await client.query(`grant usage on schema public to ${service}`);
    const { rows } = await client.query<{ statement: string }>(
      `select format('alter table public.%I owner to %I', c.relname, $1::text) as statement
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f')
          and c.relowner <> (select oid from pg_roles where rolname = $1)
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
       union all
       select format('alter sequence public.%I owner to %I', c.relname, $1::text)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind = 'S'
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype in ('a', 'i', 'e'))
          and c.relowner <> (select oid from pg_roles where rolname = $1)
       union all
       select format('alter routine %s owner to %I', p.oid::regprocedure, $1::text)
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.proowner <> (select oid from pg_roles where rolname = $1)
          and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')`,
      [roles.owner],
    );
    for (const { statement } of rows) await client.query(statement);
    await client.query('commit');
  });
}

/** Both roles on the server, the database of `superuserUrl` readied for them, and the URLs they log in with. */
export async function setUpRoles(
  superuserUrl: string,
  logins: DatabaseLogins,
): Promise<{ ownerUrl: string; serviceUrl: string }> {
  await ensureRoles(superuserUrl, logins);
  await prepareDatabase(superuserUrl, { owner: logins.owner.name, service: logins.service.name });
  return { ownerUrl: loginUrl(superuserUrl, logins.owner), serviceUrl: loginUrl(superuserUrl, logins.service) };
}

// One lock id for granting: two migrations at once would otherwise race on the same catalog rows.
const GRANTS_LOCK = 7_240_612;

/**
 * Gives the service's role exactly its privileges on every table (taking back anything else, such as an UPDATE
 * granted by hand), run by the owner after the migrations. False when the service is the owner itself: a
 * database with one role for everything, which the service refuses in production (`serviceRoleProblems`).
 */
export async function grantServiceRole(db: Kysely<any>, serviceRole: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const { rows: me } = await sql<{ name: string }>`select current_user as name`.execute(trx);
    if (me[0]?.name === serviceRole) return false;
    await sql`select pg_advisory_xact_lock(${GRANTS_LOCK})`.execute(trx);
    const service = sql.id(serviceRole);
    const { rows: tables } = await sql<{ name: string }>`
      select tablename as name from pg_tables where schemaname = 'public' order by tablename`.execute(trx);
    for (const { name } of tables) {
      const table = sql.id('public', name);
      await sql`revoke all on table ${table} from ${service}`.execute(trx);
      const privileges = SERVICE_PRIVILEGES[name as keyof Database] as readonly Privilege[] | undefined;
      if (privileges) await sql`grant ${sql.raw(privileges.join(', '))} on table ${table} to ${service}`.execute(trx);
    }
    await sql`grant usage on all sequences in schema public to ${service}`.execute(trx);
    return true;
  });
}

/**
 * The connected role, and why it must not run the service if it must not: it could change or delete audit events,
 * or switch their guard off. No problems for a role with the service's grants and nothing more.
 */
export async function serviceRoleProblems(db: Kysely<any>): Promise<{ role: string; problems: string[] }> {
  const { rows } = await sql<{
    role: string;
    superuser: boolean;
    createrole: boolean;
    table: string;
    table_missing: boolean;
    owns_table: boolean;
    may_change: boolean;
  }>`
    select r.rolname as role, r.rolsuper as superuser, r.rolcreaterole as createrole, t.name as table,
           a.oid is null as table_missing,
           coalesce(pg_has_role(r.oid, a.relowner, 'MEMBER'), false) as owns_table,
           coalesce(has_table_privilege(r.oid, a.oid, 'UPDATE, DELETE, TRUNCATE, TRIGGER'), false) as may_change
      from pg_roles r
      cross join (values ('audit_events'), ('audit_chain')) as t (name)
      left join pg_class a on a.oid = to_regclass('public.' || t.name)
     where r.rolname = current_user`.execute(db);
  const found = rows[0];
  if (!found) return { role: '?', problems: ['it is not in pg_roles'] };
  const problems: string[] = [];
  if (found.superuser) problems.push('it is a superuser');
  if (found.createrole) problems.push('it may create roles');
  for (const row of rows) {
    if (row.table_missing) problems.push(`${row.table} does not exist yet (run the migrations first)`);
    else if (row.owns_table) problems.push(`it owns ${row.table} (or is a member of its owner)`);
    else if (row.may_change) problems.push(`it may update, delete or truncate ${row.table}`);
  }
  return { role: found.role, problems };
}

/**
 * At the start of the worker and the API: in production, refuses a role that could change the audit trail;
 * elsewhere, says so.
 */
export async function checkServiceRole(
  db: Kysely<any>,
  options: { production: boolean; warn: (message: string) => void },
): Promise<void> {
  let found: { role: string; problems: string[] };
  try {
    found = await serviceRoleProblems(db);
  } catch (error) {
    const message = `could not check the database role: ${(error as Error).message}`;
    if (options.production) throw new Error(message, { cause: error });
    options.warn(message);
    return;
  }
  if (found.problems.length === 0) return;
  const message =
    `refusing a database role that could change the audit trail: ${found.role} (${found.problems.join('; ')}). ` +
    'DATABASE_URL must log in as the service role, which may only read and append audit events ' +
    '(README, "Database roles")';
  if (options.production) throw new Error(message);
  options.warn(message);
}

/**
 * The service's pool (the worker's or the API's), opened only once the role it logs in as has passed
 * `checkServiceRole`; a refused role closes the pool before the error goes up.
 */
export async function openServiceDatabase(
  connectionString: string,
  options: {
    poolSize: number;
    onPoolError: (error: Error) => void;
    production: boolean;
    warn: (message: string) => void;
  },
): Promise<DatabaseHandle> {
  const database = openDatabase(connectionString, { poolSize: options.poolSize, onPoolError: options.onPoolError });
  try {
    await checkServiceRole(database.db, { production: options.production, warn: options.warn });
  } catch (error) {
    await database.close();
    throw error;
  }
  return database;
}
