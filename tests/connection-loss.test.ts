import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { openDatabase } from '../db/database';
import { testContext } from './support/context';

/** A PostgreSQL connection lost while in use fails its query; it never takes the process down. */

test('when PostgreSQL ends a connection in the middle of a query, then the query fails, the process lives, and the next query works', async () => {
  const name = `conn-loss-${randomUUID().slice(0, 8)}`;
  const reported: Error[] = [];
  const victim = openDatabase(`${testContext().databaseUrl}?application_name=${name}`, {
    onPoolError: (error) => reported.push(error),
  });
  const admin = openDatabase(testContext().databaseUrl);
  try {
    const slow = sql`select pg_sleep(10)`.execute(victim.db);
    const outcome = slow.then(
      () => 'finished',
      (error: Error) => error.message,
    );
    // Wait until the query is running, then end its backend as an operator (or a failover) would.
    for (let i = 0; i < 100; i++) {
      const { rows } = await sql<{ n: string }>`
        select count(*) as n from pg_stat_activity where application_name = ${name} and state = 'active'`.execute(
        admin.db,
      );
      if (Number(rows[0]!.n) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${name}`.execute(
      admin.db,
    );
    expect(await outcome).toMatch(/terminat/i);
    // Give the socket's own 'error' a moment to arrive: with no listener on the client, Node would throw here.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(victim.db);
    expect(rows).toEqual([{ one: 1 }]);
  } finally {
    await victim.close();
    await admin.close();
  }
});

test('when PostgreSQL ends a connection held idle inside a transaction, then the transaction fails, the process lives, and the next query works', async () => {
  const name = `conn-idle-${randomUUID().slice(0, 8)}`;
  const victim = openDatabase(`${testContext().databaseUrl}?application_name=${name}`);
  const admin = openDatabase(testContext().databaseUrl);
  try {
    const outcome = victim.db
      .transaction()
      .execute(async (trx) => {
        await sql`select 1`.execute(trx);
        // The connection is checked out and idle (as while a route awaits Temporal inside a transaction).
        await sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${name}`.execute(
          admin.db,
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
        await sql`select 2`.execute(trx);
        return 'committed';
      })
      .catch((error: Error) => `failed: ${error.message}`);
    expect(await outcome).toMatch(/^failed: /);
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(victim.db);
    expect(rows).toEqual([{ one: 1 }]);
  } finally {
    await victim.close();
    await admin.close();
  }
});
