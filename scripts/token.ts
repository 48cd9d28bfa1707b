import { runCli } from './cli';
import { loadConfig } from '../config';
import { openDatabase } from '../db/database';
import { createToken, revokeToken, upsertUser } from '../db/users';
import { ROLES, type Role } from '../domain/case';

const USAGE = `usage:
  npm run token -- create <user-id> [--role <role> --agency <agency-id> --name <name>] [--days 90] [--label cli]
      creates the user first when --role and --agency are given; prints the token once
  npm run token -- revoke <token-id>`;

/** `npm run token`: issue or revoke API tokens from the command line (DATABASE_URL must be set). */
async function main([command, subject, ...rest]: string[]): Promise<number> {
  const option = (name: string) => {
    const at = rest.indexOf(`--${name}`);
    return at >= 0 ? rest[at + 1] : undefined;
  };
  const config = loadConfig();
  if (!command || !subject || !['create', 'revoke'].includes(command)) {
    process.stderr.write(`${USAGE}\n`);
    return 64;
  }
  if (!config.DATABASE_URL) {
    process.stderr.write('DATABASE_URL must point at the database\n');
    return 64;
  }
  const database = openDatabase(config.DATABASE_URL);
  try {
    if (command === 'revoke') {
      const done = await revokeToken(database.db, subject);
      process.stdout.write(done ? `revoked ${subject}\n` : `no token ${subject}\n`);
      return done ? 0 : 1;
    }
    const role = option('role') as Role | undefined;
    const agency = option('agency');
    if (role || agency) {
      if (!role || !ROLES.includes(role) || !agency) {
        process.stderr.write(`--role (one of ${ROLES.join(', ')}) and --agency go together\n`);
        return 64;
      }
      await upsertUser(database.db, { id: subject, role, agencyId: agency, name: option('name') ?? subject });
    }
    const user = await database.db
      .selectFrom('users')
      .select('user_id')
      .where('user_id', '=', subject)
      .executeTakeFirst();
    if (!user) {
      process.stderr.write(`no user ${subject}: give --role and --agency to create it\n`);
      return 1;
    }
    const created = await createToken(database.db, subject, {
      days: Number(option('days') ?? 90),
      label: option('label') ?? 'cli',
    });
    process.stdout.write(
      `token ${created.tokenId} for ${subject}, expires ${created.expiresAt.toISOString()}:\n${created.token}\n`,
    );
    return 0;
  } finally {
    await database.close();
  }
}

runCli('token', main);
