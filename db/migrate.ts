import { type Kysely, type MigrationProvider, Migrator, sql } from 'kysely';
import { loadConfig } from '../config';
import { openDatabase } from './database';
import { migrations } from './migrations';
import { grantServiceRole } from './roles';

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the schema to the latest migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const where = failed ? ` (migration ${failed.migrationName})` : '';
    throw new Error(
      `database migration failed${where}: ${error instanceof Error ? error.message : JSON.stringify(error)}`,
      { cause: error },
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export interface MigrationReport {
  applied: string[];
  /** The service's role, when it is not the owner and was given its privileges. */
  serviceRole: string | null;
}

/**
 * Migrates as the schema's owner (`ownerUrl`), then gives the service's role (the one `serviceUrl` logs in as)
 * its privileges on every table; with no service URL, or the owner's own, there is no one to grant to.
 */
export async function migrateDatabase(ownerUrl: string, serviceUrl?: string): Promise<MigrationReport> {
  const owner = openDatabase(ownerUrl);
  try {
    const applied = await migrateToLatest(owner.db);
    if (!serviceUrl) return { applied, serviceRole: null };
    // Asked of the server: a connection string may name its user outside the URL (PGUSER, ?user=).
    const service = openDatabase(serviceUrl, { poolSize: 1 });
    let serviceRole: string;
    try {
      serviceRole = (await sql<{ name: string }>`select current_user as name`.execute(service.db)).rows[0]!.name;
    } finally {
      await service.close();
    }
    return { applied, serviceRole: (await grantServiceRole(owner.db, serviceRole)) ? serviceRole : null };
  } finally {
    await owner.close();
  }
}

/** `npm run migrate`: as MIGRATION_DATABASE_URL (the owner; DATABASE_URL when unset), for DATABASE_URL's role. */
async function main(): Promise<void> {
  const config = loadConfig();
  const ownerUrl = config.MIGRATION_DATABASE_URL ?? config.DATABASE_URL;
  if (!ownerUrl) throw new Error('MIGRATION_DATABASE_URL (the schema owner) or DATABASE_URL must be set to migrate');
  const { applied, serviceRole } = await migrateDatabase(ownerUrl, config.DATABASE_URL);
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema is up to date\n');
  process.stdout.write(
    serviceRole
      ? `privileges granted to the service role ${serviceRole}\n`
      : config.DATABASE_URL
        ? 'no separate service role: DATABASE_URL logs in as the owner (the service refuses that in production)\n'
        : 'DATABASE_URL is unset: no service role was granted anything\n',
  );
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
