import { randomUUID } from 'node:crypto';
import { GENESIS_HASH, appendAuditEvent, hashEvent } from '../db/audit';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { testContext } from './support/context';

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

test('when forty writers append at once, then the chain has no fork: every event links to the one before it', async () => {
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => append(`test:${randomUUID()}`, { writer: i, nested: { b: 2, a: [1, 'x'] } })),
  );
  const rows = await database.db.selectFrom('audit_events').selectAll().orderBy('seq').execute();
  expect(rows.length).toBeGreaterThanOrEqual(40);
  let previous = GENESIS_HASH;
  rows.forEach((row, index) => {
    expect(BigInt(row.seq)).toBe(BigInt(index + 1));
    expect(row.prev_hash).toBe(previous);
    expect(hashEvent(row)).toBe(row.hash);
    previous = row.hash;
  });
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
