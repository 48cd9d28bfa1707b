import { randomUUID } from 'node:crypto';
import { CompiledQuery } from 'kysely';
import { caseListQuery } from '../db/lists';
import { clinicianRow, upsertReference } from '../db/reference';
import { startOfLocalDay } from '../domain/time';
import { COUNSELOR, CaseDriver, DIRECTOR, STAFF, caseBody, putClient, today } from './support/cases';
import { type TestActor, type TestStack, eventually, startStack } from './support/stack';

/** Nobody falls through the cracks: lists of cases and transfers, due soonest first, scoped and audited. */

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

const staffOf = (agencyId: string): TestActor => ({ ...STAFF, agencyId });
const directorOf = (agencyId: string): TestActor => ({ ...DIRECTOR, agencyId });

async function list(path: string, actor: TestActor) {
  const res = await stack.request('GET', path, { actor });
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { items: any[]; next: string | null };
}

const ids = (page: { items: any[] }) => page.items.map((i) => i.caseId as string);

/**
 * One agency with five cases that differ in every filtered column:
 * - soon: notice due tomorrow (inside the warning window: escalated, held by `deadlines`);
 * - next: notice due the day after, counselor-2's;
 * - risk: a client at suicide risk, held by `risk_first`, due at the end of the review SLA;
 * - ending: a termination without a last day, due at the end of the review SLA;
 * - talking: approved, at the conversation, nothing due (last).
 */
async function agencyWithCases() {
  const agencyId = `agency-lists-${randomUUID().slice(0, 6)}`;
  const soon = await CaseDriver.open(stack, { agencyId, lastDay: today(15) });
  const next = await CaseDriver.open(stack, { agencyId, lastDay: today(16), counselorId: 'counselor-2' });
  const ending = await CaseDriver.open(stack, {
    agencyId,
    kind: 'termination',
    reason: 'goals_met',
    lastDay: undefined,
  });
  const risk = await CaseDriver.open(stack, {
    agencyId,
    kind: 'referral',
    reason: 'outside_scope',
    lastDay: undefined,
    riskFlags: ['suicide_risk'],
  });
  const talking = await CaseDriver.open(stack, {
    agencyId,
    kind: 'termination',
    reason: 'client_request',
    lastDay: undefined,
  });
  await talking.act('review', { decision: 'approve', rationale: 'the client asked' }, directorOf(agencyId));
  await talking.until((c) => c.step === 'client_conversation');
  // Both notice deadlines are inside the warning window: the escalations fire at once.
  await eventually(async () => {
    const page = await list('/v1/cases?escalated=true', directorOf(agencyId));
    return page.items.length === 2;
  });
  return { agencyId, soon, next, ending, risk, talking };
}

let agency: Awaited<ReturnType<typeof agencyWithCases>>;
beforeAll(async () => {
  agency = await agencyWithCases();
}, 120_000);

describe('GET /v1/cases', () => {
  test('when a director lists the agency, then every case comes, due soonest first, a case with nothing due last', async () => {
    const { agencyId, soon, next, ending, risk, talking } = agency;
    const page = await list('/v1/cases', directorOf(agencyId));
    expect(ids(page)).toEqual([soon, next, ending, risk, talking].map((c) => c.caseId));
    const [first, second, third] = page.items;
    expect(first.dueAt).toBe(new Date(startOfLocalDay(today(1))).toISOString());
    expect(second.dueAt).toBe(new Date(startOfLocalDay(today(2))).toISOString());
    // The review SLA (72 h) from the moment the case opened.
    expect(Date.parse(third.dueAt) - Date.now()).toBeGreaterThan(71 * 3_600_000);
    expect(page.items.at(-1).dueAt).toBeNull();
    expect(page.next).toBeNull();
  });

  test('when each filter is given, then it narrows the list to exactly the cases that match', async () => {
    const { agencyId, soon, next, ending, risk, talking } = agency;
    const as = directorOf(agencyId);
    const expectations: [string, CaseDriver[]][] = [
      ['counselorId=counselor-2', [next]],
      ['kind=termination', [ending, talking]],
      ['step=client_conversation', [talking]],
      [`clientId=${risk.clientId}`, [risk]],
      ['status=open', [soon, next, ending, risk, talking]],
      ['status=closed', []],
      ['escalated=true', [soon, next]],
      ['escalated=false', [ending, risk, talking]],
      ['blockedBy=risk_first', [risk]],
      ['blockedBy=deadlines', [soon, next]],
      [`dueBefore=${today(3)}`, [soon, next]],
      [
        `dueBefore=${encodeURIComponent(new Date(Date.now() + 80 * 3_600_000).toISOString())}`,
        [soon, next, ending, risk],
      ],
      [`kind=transfer&escalated=true&counselorId=counselor-1`, [soon]],
    ];
    for (const [query, expected] of expectations) {
      const page = await list(`/v1/cases?${query}`, as);
      expect({ query, ids: ids(page) }).toEqual({ query, ids: expected.map((c) => c.caseId) });
    }
  });

  test('when a list is read page by page, then the cursors cover every case exactly once, in order', async () => {
    const { agencyId } = agency;
    const all = ids(await list('/v1/cases', directorOf(agencyId)));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await list(`/v1/cases?limit=2${cursor ? `&cursor=${cursor}` : ''}`, directorOf(agencyId));
      seen.push(...ids(page));
      cursor = page.next;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(all);
  });

  test('when a counselor lists, even asking for another counselor, then only their own cases come', async () => {
    const { agencyId, soon, ending, risk, talking } = agency;
    const counselor = { ...COUNSELOR, agencyId };
    const own = [soon, ending, risk, talking].map((c) => c.caseId);
    expect(ids(await list('/v1/cases', counselor))).toEqual(own);
    expect(ids(await list('/v1/cases?counselorId=counselor-2', counselor))).toEqual(own);
  });

  test('when another agency lists, then none of this agency’s cases appear, and this agency sees none of its', async () => {
    const other = `agency-other-${randomUUID().slice(0, 6)}`;
    const theirs = await CaseDriver.open(stack, { agencyId: other });
    const mine = ids(await list('/v1/cases', directorOf(agency.agencyId)));
    const seenByOther = ids(await list('/v1/cases', directorOf(other)));
    expect(seenByOther).toEqual([theirs.caseId]);
    expect(mine).not.toContain(theirs.caseId);
    const byClient = await list(`/v1/cases?clientId=${theirs.clientId}`, directorOf(agency.agencyId));
    expect(byClient.items).toEqual([]);
  });

  test('when an admin lists cases, then 403', async () => {
    const res = await stack.request('GET', '/v1/cases', {
      actor: { id: 'admin-1', role: 'admin', agencyId: agency.agencyId },
    });
    expect(res.status).toBe(403);
  });

  test('when the query has an unknown parameter, a bad value or a forged cursor, then 400 naming the field', async () => {
    const as = directorOf(agency.agencyId);
    const cases: [string, string][] = [
      ['/v1/cases?sort=name', 'query.sort'],
      ['/v1/cases?status=lost', 'query.status'],
      ['/v1/cases?blockedBy=role', 'query.blockedBy'],
      ['/v1/cases?dueBefore=tomorrow', 'query.dueBefore'],
      ['/v1/cases?limit=201', 'query.limit'],
      ['/v1/cases?escalated=yes', 'query.escalated'],
      [`/v1/cases?cursor=${Buffer.from('["x","y"]').toString('base64url')}`, 'query.cursor'],
      ['/v1/cases?cursor=%25%25%25', 'query.cursor'],
      ['/v1/transfers?endedWithinDays=-1', 'query.endedWithinDays'],
    ];
    for (const [path, field] of cases) {
      const res = await stack.request('GET', path, { actor: as });
      expect({ path, status: res.status, fields: res.body.errors?.map((e: any) => e.field) }).toEqual({
        path,
        status: 400,
        fields: [field],
      });
    }
  });

  test('when a case is listed, then its item carries ids, where it stands and what holds it, and no health detail', async () => {
    const page = await list(`/v1/cases?clientId=${agency.risk.clientId}`, directorOf(agency.agencyId));
    const [item] = page.items;
    expect(Object.keys(item).sort()).toEqual(
      [
        'blockers',
        'caseId',
        'clientId',
        'counselorId',
        'dueAt',
        'escalated',
        'kind',
        'lastDay',
        'noticeDue',
        'reason',
        'status',
        'step',
        'transferId',
      ].sort(),
    );
    expect(item.blockers.map((b: any) => b.rule)).toContain('risk_first');
    expect(JSON.stringify(item)).not.toMatch(/suicide|Sam Rivera|portal|substance/i);
  });

  test('when a list is read, then exactly one audit event records it, with the filter and the count', async () => {
    const res = await stack.request('GET', '/v1/cases?kind=termination', { actor: directorOf(agency.agencyId) });
    expect(res.status).toBe(200);
    const events = await stack.db
      .selectFrom('audit_events')
      .select(['action', 'agency_id', 'case_id', 'after'])
      .where('request_id', '=', res.headers.get('x-request-id'))
      .execute();
    expect(events).toEqual([
      {
        action: 'case.listed',
        agency_id: agency.agencyId,
        case_id: null,
        after: { filter: { kind: 'termination', limit: 50, cursor: null }, count: 2 },
      },
    ]);
  });

  test('when the planner answers a list by counselor or of open cases, then it reads an index in the sort order (no sort step)', async () => {
    const plans: string[] = [];
    for (const filter of [{ counselorId: 'counselor-1' }, { status: 'open' as const }, {}]) {
      const query = caseListQuery(stack.db, { agencyId: agency.agencyId, ...filter, limit: 51 }).compile();
      const plan = await stack.db.transaction().execute(async (trx) => {
        // The test table is tiny and its statistics move with every other test file writing to it: forbid the
        // sequential scan and the sort, so the plan shows whether an index gives the list its order, as 100,000
        // cases would need. Without such an index the plan still sorts, and the test fails.
        await trx.executeQuery(CompiledQuery.raw('set local enable_seqscan = off'));
        await trx.executeQuery(CompiledQuery.raw('set local enable_sort = off'));
        const result = await trx.executeQuery<{ 'QUERY PLAN': string }>(
          CompiledQuery.raw(`explain ${query.sql}`, [...query.parameters]),
        );
        return result.rows.map((r) => r['QUERY PLAN']).join('\n');
      });
      plans.push(plan);
    }
    expect(plans[0]).toMatch(/Index Scan using cases_list_counselor_due_idx/);
    expect(plans[1]).toMatch(/Index Scan using cases_list_open_due_idx/);
    expect(plans[2]).toMatch(/Index Scan using cases_list_due_idx/);
    for (const plan of plans) expect(plan).not.toMatch(/\bSort\b/);
  });
});

describe('GET /v1/transfers', () => {
  async function transferAgency() {
    const agencyId = `agency-moves-${randomUUID().slice(0, 6)}`;
    for (const clinicianId of ['counselor-moving', 'receiver-1']) {
      await upsertReference(
        stack.db,
        'clinicians',
        clinicianRow(clinicianId, {
          agencyId,
          name: clinicianId,
          capacity: 10,
          specialties: [],
          active: true,
          contact: 'x',
        }),
      );
    }
    for (const n of [1, 2]) {
      await putClient(stack, agencyId, `${agencyId}-c${n}`, { ...caseBody().record, counselorId: 'counselor-moving' });
    }
    const started = await stack.request('POST', '/v1/transfers', {
      body: { counselorId: 'counselor-moving', lastDay: today(40) },
      actor: staffOf(agencyId),
    });
    expect(started.status).toBe(202);
    return { agencyId, transferId: started.body.transferId as string };
  }

  /** A transfer row alone (no workflow), ended `daysAgo` days ago. */
  async function endedTransfer(agencyId: string, lastDay: string, daysAgo: number): Promise<string> {
    const transferId = randomUUID();
    await stack.db
      .insertInto('transfers')
      .values({
        transfer_id: transferId,
        agency_id: agencyId,
        counselor_id: `gone-${daysAgo}`,
        last_day: lastDay,
        client_ids: null,
        status: 'finished',
        expected: 0,
        reason: 'counselor_departure',
        requested_by: 'staff-1',
        requested_by_role: 'staff',
        cancel_reason: null,
        updated_at: new Date(Date.now() - daysAgo * 86_400_000),
      })
      .execute();
    return transferId;
  }

  test('when staff list transfers, then open ones and those ended within 30 days come, last day soonest, with case counts', async () => {
    const { agencyId, transferId } = await transferAgency();
    const recent = await endedTransfer(agencyId, today(-10), 10);
    const old = await endedTransfer(agencyId, today(-50), 40);
    const page = await eventually(async () => {
      const p = await list('/v1/transfers', staffOf(agencyId));
      const open = p.items.find((t) => t.transferId === transferId);
      return open?.casesByStatus.open === 2 ? p : undefined;
    }, 30_000);
    expect(page.items.map((t) => t.transferId)).toEqual([recent, transferId]);
    expect(page.items[1]).toMatchObject({
      counselorId: 'counselor-moving',
      lastDay: today(40),
      status: 'open',
      expected: 2,
      casesByStatus: { open: 2 },
    });
    expect(page.items.map((t) => t.transferId)).not.toContain(old);

    const narrower = await list('/v1/transfers?endedWithinDays=5', staffOf(agencyId));
    expect(narrower.items.map((t) => t.transferId)).toEqual([transferId]);
    const firstPage = await list('/v1/transfers?limit=1', staffOf(agencyId));
    const secondPage = await list(`/v1/transfers?limit=1&cursor=${firstPage.next}`, staffOf(agencyId));
    expect([...firstPage.items, ...secondPage.items].map((t) => t.transferId)).toEqual([recent, transferId]);
    expect(secondPage.next).toBeNull();

    const ofTransfer = await list(`/v1/cases?transferId=${transferId}`, directorOf(agencyId));
    expect(ofTransfer.items.map((c) => c.clientId).sort()).toEqual([`${agencyId}-c1`, `${agencyId}-c2`]);

    const elsewhere = await list('/v1/transfers', staffOf(agency.agencyId));
    expect(elsewhere.items.map((t) => t.transferId)).not.toContain(transferId);
  }, 60_000);

  test('when a counselor lists transfers, then 403; when staff do, then one transfer.listed event', async () => {
    const counselor = await stack.request('GET', '/v1/transfers', {
      actor: { ...COUNSELOR, agencyId: agency.agencyId },
    });
    expect(counselor.status).toBe(403);
    const res = await stack.request('GET', '/v1/transfers', { actor: staffOf(agency.agencyId) });
    expect(res.status).toBe(200);
    const events = await stack.db
      .selectFrom('audit_events')
      .select(['action', 'agency_id'])
      .where('request_id', '=', res.headers.get('x-request-id'))
      .execute();
    expect(events).toEqual([{ action: 'transfer.listed', agency_id: agency.agencyId }]);
  });
});
