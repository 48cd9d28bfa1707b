import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { sql } from 'kysely';
import { lastAnchor, writeAnchor } from '../db/anchors';
import { GENESIS_HASH, appendAuditEvent, hashEvent, verifyChain } from '../db/audit';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { COUNSELOR, CaseDriver, DIRECTOR, STAFF, today } from './support/cases';
import { freshDatabase } from './support/isolated';
import { type TestStack, eventually, startStack } from './support/stack';

const COMPLIANCE = { id: 'compliance-1', role: 'compliance' as const };

/** A database of its own, so tampering here cannot disturb the other test files; in a superuser's hands. */
async function scratchChain(events: number): Promise<{ handle: DatabaseHandle; drop: () => Promise<void> }> {
  const database = await freshDatabase(`tamper_${randomUUID().replace(/-/g, '').slice(0, 12)}`);
  const handle = openDatabase(database.superuserUrl);
  for (let i = 1; i <= events; i++) {
    await handle.db.transaction().execute((trx) =>
      appendAuditEvent(trx, {
        eventKey: `e${i}`,
        actor: { id: 'staff-1', role: 'staff' },
        action: 'test.event',
        outcome: 'done',
        after: { i },
      }),
    );
  }
  return {
    handle,
    drop: async () => {
      await handle.close();
      await database.drop();
    },
  };
}

/** As a superuser could: with triggers off for this session only. */
async function asSuperuser(handle: DatabaseHandle, statement: ReturnType<typeof sql>): Promise<void> {
  await handle.db.connection().execute(async (conn) => {
    await sql`set session_replication_role = replica`.execute(conn);
    await statement.execute(conn);
    await sql`set session_replication_role = origin`.execute(conn);
  });
}

describe('tamper evidence', () => {
  test('when nothing was touched, then verify walks the whole chain and finds it whole', async () => {
    const { handle, drop } = await scratchChain(10);
    try {
      const report = await verifyChain(handle.db, null, 3);
      expect(report).toMatchObject({ ok: true, checked: 10, headSeq: '10', firstBroken: null });
    } finally {
      await drop();
    }
  });

  test('when a row is altered, deleted or inserted by hand, then verify names the first broken link', async () => {
    const altered = await scratchChain(10);
    const deleted = await scratchChain(10);
    const inserted = await scratchChain(10);
    try {
      await asSuperuser(altered.handle, sql`update audit_events set actor_id = 'someone-else' where seq = 5`);
      expect((await verifyChain(altered.handle.db, null)).firstBroken).toEqual({
        seq: '5',
        reason: expect.stringMatching(/altered/),
      });

      await asSuperuser(deleted.handle, sql`delete from audit_events where seq = 4`);
      expect((await verifyChain(deleted.handle.db, null)).firstBroken).toEqual({
        seq: '4',
        reason: expect.stringMatching(/missing/),
      });

      await asSuperuser(
        inserted.handle,
        sql`
        insert into audit_events (seq, event_key, occurred_at, actor_id, actor_role, action, outcome, prev_hash, hash)
        values (11, 'forged', now(), 'intruder', 'admin', 'case.closed', 'done', ${'f'.repeat(64)}, ${'0'.repeat(64)})`,
      );
      expect((await verifyChain(inserted.handle.db, null)).firstBroken).toEqual({
        seq: '11',
        reason: expect.stringMatching(/prev_hash/),
      });
    } finally {
      await Promise.all([altered.drop(), deleted.drop(), inserted.drop()]);
    }
  });

  test('when a superuser rewrites the whole chain consistently, then the anchor written outside the database catches it', async () => {
    const { handle, drop } = await scratchChain(8);
    const file = join(mkdtempSync(join(tmpdir(), 'anchor-')), 'anchors.ndjson');
    try {
      await writeAnchor(handle.db, file);
      expect(lastAnchor(file)).toMatchObject({ seq: '8' });
      // Rewrite event 3 and re-hash everything after it: the chain is internally consistent again.
      await asSuperuser(handle, sql`update audit_events set outcome_reason = 'rewritten' where seq = 3`);
      const rows = await handle.db.selectFrom('audit_events').selectAll().orderBy('seq').execute();
      let previous = GENESIS_HASH;
      for (const row of rows) {
        const hash = hashEvent({ ...row, prev_hash: previous });
        await asSuperuser(
          handle,
          sql`update audit_events set prev_hash = ${previous}, hash = ${hash} where seq = ${row.seq}`,
        );
        previous = hash;
      }
      expect((await verifyChain(handle.db, null)).ok).toBe(true);
      const report = await verifyChain(handle.db, lastAnchor(file));
      expect(report.ok).toBe(false);
      expect(report.firstBroken).toEqual({ seq: '8', reason: expect.stringMatching(/rewritten/) });
    } finally {
      await drop();
    }
  });
});

describe('the trail for compliance', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.close();
  });

  test('when compliance pulls a case as CSV and NDJSON, then every event comes with a manifest, and the export is audited', async () => {
    const c = await CaseDriver.open(stack);
    await c.approve();
    await c.converse('accept_proposed');
    await c.act(
      'consents',
      {
        recipientProviderId: 'harbor',
        disclosed: 'treatment summary',
        purpose: 'continuity of care',
        expiresOn: today(90),
        coversSubstanceUseRecords: false,
        revocable: true,
        signedOn: today(),
      },
      STAFF,
    );
    await c.act(
      'referrals',
      {
        candidates: [
          { providerId: 'harbor', name: 'Harbor Counseling', external: true, contact: 'intake@harbor.example' },
        ],
      },
      STAFF,
    );
    await c.until((v) => v.process.referrals[0]?.state === 'sent');

    const refused = await stack.request('GET', `/v1/audit?caseId=${c.caseId}`, { actor: STAFF });
    expect(refused.status).toBe(403);

    const ndjson = await stack.request<string>('GET', `/v1/audit?caseId=${c.caseId}`, { actor: COMPLIANCE });
    expect(ndjson.status).toBe(200);
    const lines = (typeof ndjson.body === 'string' ? ndjson.body : JSON.stringify(ndjson.body))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const { manifest } = lines[0];
    expect(manifest).toMatchObject({ filter: { caseId: c.caseId }, exportedBy: COMPLIANCE });
    const events = lines.slice(1);
    expect(events).toHaveLength(manifest.count);
    expect(events[0].seq).toBe(manifest.firstSeq);
    expect(events.at(-1).seq).toBe(manifest.lastSeq);
    const actions = events.map((e: { action: string }) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'case.opened',
        'decision.approved',
        'conversation.held',
        'consent.recorded',
        'referral.sent',
        'disclosure.made',
        'case.viewed.details',
      ]),
    );

    const csv = await stack.request<string>('GET', `/v1/audit?caseId=${c.caseId}&format=csv`, { actor: COMPLIANCE });
    expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
    const rows = csv.body.trim().split('\n');
    expect(rows[0]).toMatch(/^seq,occurred_at,actor_id/);
    expect(JSON.parse(csv.headers.get('x-audit-manifest')!).count).toBeGreaterThanOrEqual(manifest.count);

    await eventually(async () => {
      const exported = await stack.db
        .selectFrom('audit_events')
        .select('actor_id')
        .where('action', '=', 'audit.exported')
        .where('case_id', '=', c.caseId)
        .execute();
      return exported.length === 2;
    });
    // Another agency's compliance sees none of it.
    const stranger = { ...COMPLIANCE, agencyId: 'agency-elsewhere' };
    // Only the manifest line comes back, so the helper has already parsed it as JSON.
    const foreign = await stack.request('GET', `/v1/audit?caseId=${c.caseId}`, { actor: stranger });
    expect(foreign.body.manifest.count).toBe(0);
    const foreignDisclosures = await stack.request('GET', `/v1/clients/${(await c.view()).clientId}/disclosures`, {
      actor: stranger,
    });
    expect(foreignDisclosures.body.disclosures).toEqual([]);
    const verify = await stack.request('GET', '/v1/audit/verify', { actor: COMPLIANCE });
    expect(verify.body).toMatchObject({ ok: true, firstBroken: null });
    // The stranger's export is in the stranger's own trail, and their verify counts only their own events.
    const exports = await stack.db
      .selectFrom('audit_events')
      .select(['agency_id'])
      .where('action', '=', 'audit.exported')
      .where('case_id', '=', c.caseId)
      .where('actor_id', '=', COMPLIANCE.id)
      .execute();
    expect(exports.map((e) => e.agency_id)).toContain('agency-elsewhere');
    const strangerVerify = await stack.request('GET', '/v1/audit/verify', { actor: stranger });
    const own = await stack.db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('agency_id', '=', 'agency-elsewhere')
      .where('seq', '<=', strangerVerify.body.headSeq)
      .executeTakeFirstOrThrow();
    expect(strangerVerify.body.checked).toBe(Number(own.n));
    expect(strangerVerify.body).not.toHaveProperty('headHash');

    const accounting = await stack.request('GET', `/v1/clients/${(await c.view()).clientId}/disclosures`, {
      actor: COMPLIANCE,
    });
    expect(accounting.status).toBe(200);
    expect(accounting.body.disclosures).toEqual([
      expect.objectContaining({
        recipient: 'harbor',
        disclosed: 'treatment summary',
        caseId: c.caseId,
        consent: expect.objectContaining({ purpose: 'continuity of care' }),
      }),
    ]);
    expect((await stack.request('GET', `/v1/clients/x/disclosures`, { actor: COUNSELOR })).status).toBe(403);
  });

  test('when a reason in the trail starts like a spreadsheet formula, then the CSV export escapes it so it never runs', async () => {
    const c = await CaseDriver.open(stack);
    await c.act('cancel', { reason: '=HYPERLINK("http://example.invalid","open me")' }, DIRECTOR);
    await c.until((v) => v.status === 'cancelled');
    const csv = await stack.request<string>('GET', `/v1/audit?caseId=${c.caseId}&format=csv`, { actor: COMPLIANCE });
    const cancelled = csv.body.split('\n').find((line) => line.includes('case.cancelled'))!;
    expect(cancelled).toContain(`"'=HYPERLINK(""http://example.invalid"",""open me"")"`);
    expect(cancelled).not.toMatch(/,=HYPERLINK|,"=HYPERLINK/);
  });

  test('when a client name in the trail starts with =, +, -, @, a tab or a CR (or a full-width =, +, -, @), then the CSV cell starts with a quote and reads back as written', async () => {
    const clientId = `client-${randomUUID()}`;
    const names = [
      '=Jane',
      '+Jane',
      '-Jane',
      '@Jane',
      '\tJane',
      '\rJane',
      '\uff1dJane',
      '\uff0bJane',
      '\uff0dJane',
      '\uff20Jane',
    ];
    for (const [i, name] of names.entries()) {
      await stack.db.transaction().execute((trx) =>
        appendAuditEvent(trx, {
          eventKey: `csv-name:${clientId}:${i}`,
          agencyId: 'agency-1',
          actor: { id: 'staff-1', role: 'staff' },
          action: 'client.updated',
          clientId,
          outcome: 'done',
          outcomeReason: `${name} Doe`,
          after: { name: `${name} Doe` },
        }),
      );
    }
    const csv = await stack.request<string>('GET', `/v1/audit?clientId=${clientId}&format=csv`, { actor: COMPLIANCE });
    expect(csv.status).toBe(200);
    const rows = parse(csv.body, { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => r.outcome_reason)).toEqual(names.map((name) => `'${name} Doe`));
    // Inside JSON the name is not at the start of a cell, and stays as written.
    expect(rows.map((r) => JSON.parse(r.after!).name)).toEqual(names.map((name) => `${name} Doe`));
    expect(Object.keys(rows[0]!)).toEqual(expect.arrayContaining(['seq', 'occurred_at', 'outcome_reason', 'hash']));
    expect(rows[0]!.occurred_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});
