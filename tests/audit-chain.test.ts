import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { GENESIS_HASH, appendAuditEvent, hashEvent, integrateAuditChains, linkHash } from '../db/audit';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { testContext } from './support/context';
import { eventually } from './support/stack';

let database: DatabaseHandle;
beforeAll(() => {
  database = openDatabase(testContext().databaseUrl, { poolSize: 8 });
});
afterAll(async () => {
  await database.close();
});

const actor = { id: 'staff-1', role: 'staff' as const };

async function append(eventKey: string, after: unknown = { n: 1 }) {
  return database.db
    .transaction()
    .execute((trx) => appendAuditEvent(trx, { eventKey, actor, action: 'test.event', outcome: 'done', after }));
}

test('when the same event key is written twice, then one event exists and the retry gets it back', async () => {
  const key = `test:${randomUUID()}`;
  const first = await append(key);
  const second = await append(key, { n: 2 });
  expect(first.created).toBe(true);
  expect(second).toEqual({ seq: first.seq, hash: first.hash, created: false });
  const rows = await database.db.selectFrom('audit_events').select('seq').where('event_key', '=', key).execute();
  expect(rows).toHaveLength(1);
});

/** Appends in a transaction of its own; `lockTimeout` makes any wait on another writer an error. */
async function appendFor(agencyId: string, eventKey: string, lockTimeout?: string) {
  return database.db.transaction().execute(async (trx) => {
    if (lockTimeout) await sql`select set_config('lock_timeout', ${lockTimeout}, true)`.execute(trx);
    return appendAuditEvent(trx, { eventKey, agencyId, actor, action: 'test.event', outcome: 'done' });
  });
}

/** An agency's chain, checked link by link from genesis. */
async function chainOf(agencyId: string) {
  const entries = await database.db
    .selectFrom('audit_chain as c')
    .innerJoin('audit_events as e', 'e.seq', 'c.event_seq')
    .selectAll('e')
    .select(['c.position', 'c.prev_hash as link_prev', 'c.hash as link', 'c.event_hash'])
    .where('c.chain', '=', agencyId)
    .orderBy('c.position')
    .execute();
  let previous = GENESIS_HASH;
  entries.forEach((entry, index) => {
    expect(entry.position).toBe(String(index + 1));
    expect(entry.link_prev).toBe(previous);
    expect(entry.agency_id).toBe(agencyId);
    expect(hashEvent(entry)).toBe(entry.event_hash);
    expect(linkHash(previous, entry.position, entry.seq, entry.event_hash)).toBe(entry.link);
    previous = entry.link;
  });
  return entries;
}

test('when forty writers in four agencies append at once (each key twice) and two integrators run at once, then each agency has one unforked chain holding each of its events exactly once', async () => {
  const agencies = Array.from({ length: 4 }, () => `agency-${randomUUID()}`);
  const keys = Array.from({ length: 40 }, (_, i) => ({ agency: agencies[i % 4]!, key: `test:${randomUUID()}` }));
  await Promise.all([...keys, ...keys].map(({ agency, key }) => appendFor(agency, key)));
  await Promise.all([integrateAuditChains(database.db, { batch: 3 }), integrateAuditChains(database.db, { batch: 4 })]);
  for (const agency of agencies) {
    const entries = await chainOf(agency);
    expect(entries.map((e) => e.event_key).sort()).toEqual(
      keys
        .filter((k) => k.agency === agency)
        .map((k) => k.key)
        .sort(),
    );
  }
});

test('when a writer holds its transaction open, then writers of another agency and of the same one append without waiting for it, and its event is chained once it commits', async () => {
  const agency = `agency-${randomUUID()}`;
  const other = `agency-${randomUUID()}`;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let heldSeq = '';
  const holder = database.db.transaction().execute(async (trx) => {
    heldSeq = (
      await appendAuditEvent(trx, {
        eventKey: `held:${agency}`,
        agencyId: agency,
        actor,
        action: 'test.event',
        outcome: 'done',
      })
    ).seq;
    await held;
  });
  await eventually(async () => heldSeq !== '', 5_000);
  // With the old global lock each of these waited for the holder's commit, and timed out here.
  await appendFor(other, `other:${randomUUID()}`, '1s');
  await appendFor(agency, `same:${randomUUID()}`, '1s');
  await integrateAuditChains(database.db, { chains: [agency, other] });
  expect((await chainOf(agency)).map((e) => e.event_key)).not.toContain(`held:${agency}`);
  release();
  await holder;
  await integrateAuditChains(database.db, { chains: [agency] });
  const entries = await chainOf(agency);
  // Its seq is the lower one, its place in the chain the later one: the chain's order is the order of commit.
  expect(entries.map((e) => e.seq)).toEqual([expect.any(String), heldSeq]);
  expect(BigInt(entries[1]!.seq)).toBeLessThan(BigInt(entries[0]!.seq));
});

test('when anyone tries to update or delete an audit event, then the database refuses: the service by privilege, even the owner by trigger', async () => {
  await append(`test:${randomUUID()}`);
  await expect(database.db.updateTable('audit_events').set({ action: 'forged' }).execute()).rejects.toThrow(
    /permission denied/,
  );
  await expect(database.db.deleteFrom('audit_events').execute()).rejects.toThrow(/permission denied/);
  const owner = openDatabase(testContext().ownerUrl, { poolSize: 1 });
  try {
    await expect(owner.db.updateTable('audit_events').set({ action: 'forged' }).execute()).rejects.toThrow(
      /append-only/,
    );
    await expect(owner.db.deleteFrom('audit_events').execute()).rejects.toThrow(/append-only/);
  } finally {
    await owner.close();
  }
});
