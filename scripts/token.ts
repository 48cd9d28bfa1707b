import { runCli } from './cli';
import { loadConfig } from '../config';
import { openDatabase } from '../db/database';
import { createToken, findUser, revokeToken, upsertUser } from '../db/users';
import { ROLES, type Role } from '../domain/case';

const USAGE = `usage:
  npm run token -- create <user-id> --agency <agency-id> [--role <role> --name <name>] [--days 90] [--label cli]
      creates the user first when --role is given; prints the token once
  npm run token -- revoke <token-id> --agency <agency-id>`;

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
  // A user id names a person only within an agency.
  const agency = option('agency');
  if (!agency) {
    process.stderr.write(`--agency is required\n${USAGE}\n`);
    return 64;
  }
  const database = openDatabase(config.DATABASE_URL);
  try {
    if (command === 'revoke') {
      const done = await revokeToken(database.db, agency, subject);
      process.stdout.write(done ? `revoked ${subject}\n` : `no token ${subject} in ${agency}\n`);
      return done ? 0 : 1;
    }
    const role = option('role') as Role | undefined;
    if (role) {
      if (!ROLES.includes(role)) {
        process.stderr.write(`--role must be one of ${ROLES.join(', ')}\n`);
        return 64;
      }
      await upsertUser(database.db, { id: subject, role, agencyId: agency, name: option('name') ?? subject });
    }
    if (!(await findUser(database.db, agency, subject))) {
      process.stderr.write(`no user ${subject} in ${agency}: give --role to create it\n`);
      return 1;
    }
    const created = await createToken(
      database.db,
      { agencyId: agency, userId: subject },
      {
        days: Number(option('days') ?? 90),
        label: option('label') ?? 'cli',
      },
    );
    process.stdout.write(
      `token ${created.tokenId} for ${subject}, expires ${created.expiresAt.toISOString()}:\n${created.token}\n`,
    );
    return 0;
  } finally {
    await database.close();
  }
}

runCli('token', main);
