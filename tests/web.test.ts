import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import axe from 'axe-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createToken } from '../db/users';
import { localDate } from '../domain/time';
import { seedDemoAgency } from '../scripts/seed-demo';
import { launchChromium } from './support/chromium';
import { type TestStack, eventually, send, startStack } from './support/stack';

/**
 * The staff page end to end, in Debian's Chromium driven by playwright-core: the page is served by the API
 * and acts only through `/v1`, against a real worker, PostgreSQL and Temporal. A screenshot of every page goes
 * to artifacts/web/ (kept by CI as an artifact; not committed).
 */

const SHOTS = resolve(__dirname, '..', 'artifacts', 'web');

let stack: TestStack;
let browser: Browser;
const agencyId = `web-${randomUUID().slice(0, 8)}`;
const tokens: Record<string, string> = {};
let transferId: string;

async function casesOf(counselorId: string) {
  return stack.db
    .selectFrom('cases')
    .select(['case_id', 'client_id', 'step', 'status'])
    .where('agency_id', '=', agencyId)
    .where('counselor_id', '=', counselorId)
    .orderBy('client_id')
    .execute();
}

async function caseOf(clientId: string) {
  return stack.db
    .selectFrom('cases')
    .select(['case_id', 'step', 'status'])
    .where('agency_id', '=', agencyId)
    .where('client_id', '=', clientId)
    .executeTakeFirstOrThrow();
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  stack = await startStack();
  await seedDemoAgency(stack.db, agencyId);
  for (const userId of ['staff-1', 'counselor-1', 'counselor-3', 'director-1', 'compliance-1']) {
    tokens[userId] = (await createToken(stack.db, { agencyId, userId }, { label: 'test', days: 1 })).token;
  }
  const started = await send<{ transferId: string }>(stack.url, 'POST', '/v1/transfers', {
    token: tokens['staff-1'],
    body: { counselorId: 'counselor-3', lastDay: '2027-03-01', reason: 'counselor_relocation' },
  });
  expect(started.status).toBe(202);
  transferId = started.body.transferId;
  // counselor-1 has a case of their own too: client-006 (no flags).
  const own = await send(stack.url, 'POST', '/v1/cases', {
    token: tokens['counselor-1'],
    body: { clientId: 'client-006', kind: 'termination', reason: 'counselor_relocation', lastDay: '2027-03-01' },
  });
  expect(own.status).toBe(202);
  await eventually(
    async () => (await casesOf('counselor-3')).filter((c) => c.step === 'decision_review').length === 12,
    60_000,
  );
  await eventually(async () => (await caseOf('client-006')).step === 'decision_review', 30_000);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

/** A fresh tab (no session) that fails the test on any script error. */
async function newPage(): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.setDefaultTimeout(20_000);
  return { context, page, errors };
}

async function signIn(page: Page, userId: string): Promise<void> {
  await page.goto(`${stack.url}/`);
  await page.getByLabel('API token').fill(tokens[userId]!);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').waitFor();
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** axe-core's serious and critical findings on the page as it stands (run through DevTools, not past the CSP). */
async function accessibilityProblems(page: Page): Promise<string[]> {
  await page.evaluate(axe.source);
  const violations = await page.evaluate(async () => {
    // In the page: its globals, not this file's (which is typed for Node).
    const inPage = globalThis as unknown as { axe: typeof axe; document: Parameters<typeof axe.run>[0] };
    const result = await inPage.axe.run(inPage.document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).join(', ')}`);
}

/** Waits until `probe` holds on the page, re-reading it; Playwright's own waits cover elements, not counts. */
async function until(probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  await eventually(async () => (await probe()) || undefined, timeoutMs);
}

describe('the staff page', () => {
  test('when nobody is signed in, then the page asks for sign-in, sends no data, and holds to its security headers', async () => {
    const { context, page, errors } = await newPage();
    const answer = await page.goto(`${stack.url}/`);
    const csp = answer!.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    await page.getByRole('heading', { name: 'Sign in to handoff' }).waitFor();
    await shot(page, 'sign-in');
    expect(await accessibilityProblems(page)).toEqual([]);
    // A wrong token is told so, and the page stays signed out.
    await page.getByLabel('API token').fill('hk_not-a-real-token-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That token was not accepted').waitFor();
    expect(
      await page.evaluate(() =>
        (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem(
          'handoff.token',
        ),
      ),
    ).toBeNull();
    expect(errors).toEqual([]);
    await context.close();
  });

  test('when a director signs in and follows the transfer, then its progress moves on the page as cases advance, without a reload', async () => {
    const { context, page, errors } = await newPage();
    await signIn(page, 'director-1');
    await page.getByRole('link', { name: 'Transfers' }).click();
    await page.getByRole('link', { name: 'Follow the transfer of counselor-3' }).click();
    await page.getByRole('heading', { name: "Transfer of counselor-3's caseload" }).waitFor();
    expect(await page.getByTestId('opened').textContent()).toBe('12 of 12');
    const review = page.locator('[data-step="decision_review"] label');
    expect(await review.textContent()).toContain('0 of 12 past');
    await shot(page, 'transfer');
    expect(await accessibilityProblems(page)).toEqual([]);

    // Another director approves one case through the API; the open page catches up by itself.
    const [first] = await casesOf('counselor-3');
    const approved = await send(stack.url, 'POST', `/v1/cases/${first!.case_id}/review`, {
      token: tokens['director-1'],
      body: { decision: 'approve', rationale: 'Relocation; continuity planned with the receiving clinician' },
    });
    expect(approved.status).toBe(200);
    await until(async () => (await review.textContent())!.includes('1 of 12 past'));
    expect(await page.locator('[data-step="client_conversation"] label').textContent()).toContain('1 here now');
    expect(errors).toEqual([]);
    await context.close();
  });

  test('when a director approves a decision from the queue, then the case advances and its page shows the step, the waits and the timeline', async () => {
    const { context, page, errors } = await newPage();
    await signIn(page, 'director-1');
    await page.getByRole('heading', { name: 'My queue' }).waitFor();
    // client-008 is counselor-3's (8 % 3 + 1 = 3) and carries no risk flag.
    const card = page.locator('article[data-kind="review_decision"]', { hasText: 'client-008' });
    await card.waitFor();
    await shot(page, 'queue');
    expect(await accessibilityProblems(page)).toEqual([]);
    await card.getByRole('button', { name: 'Review the decision…' }).click();
    await card.getByLabel('Approve').check();
    await card.getByLabel('Rationale').fill('Relocation; the client has been offered two receiving clinicians');
    await card.getByRole('button', { name: 'Record the review' }).click();
    await page.getByRole('status').getByText('client-008 now stands at client conversation').waitFor();
    // The read model follows the workflow's answer by an activity: it catches up, it is not there at once.
    await until(async () => (await caseOf('client-008')).step === 'client_conversation');
    await until(async () => (await card.count()) === 0);

    const { case_id } = await caseOf('client-008');
    await page.goto(`${stack.url}/#/cases/${case_id}`);
    await page.getByRole('heading', { name: /Case of client-008/ }).waitFor();
    expect(await page.getByTestId('case-step').textContent()).toBe('client conversation');
    expect(await page.locator('[aria-current="step"]').first().textContent()).toBe('client conversation');
    const timeline = page.locator('table.timeline');
    await timeline.getByText('director-1 (clinical director)').first().waitFor();
    expect(await timeline.textContent()).toContain('decision approved');
    await shot(page, 'case');
    expect(await accessibilityProblems(page)).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  test('when a refused action is tried from the page, then the page names the rule that refused it and nothing changes', async () => {
    const { context, page, errors } = await newPage();
    // client-005 is counselor-3's and on record with a risk flag: no approval before a safety plan.
    const before = await caseOf('client-005');
    await signIn(page, 'director-1');
    const card = page.locator('article[data-kind="review_decision"]', { hasText: 'client-005' });
    await card.getByRole('button', { name: 'Review the decision…' }).click();
    await card.getByLabel('Approve').check();
    await card.getByLabel('Rationale').fill('Relocation');
    await card.getByRole('button', { name: 'Record the review' }).click();
    const refused = card.getByRole('alert');
    await refused.getByText('Refused by the rule risk_first').waitFor();
    expect(await refused.textContent()).toMatch(/safety plan before approving$/);
    await shot(page, 'refused');
    const after = await caseOf('client-005');
    expect(after).toEqual(before);
    expect(after.step).toBe('decision_review');
    expect(errors).toEqual([]);
    await context.close();
  });

  test("when a counselor signs in, then they see their own cases' tasks only, and another counselor's case does not exist for them", async () => {
    const own = await caseOf('client-006');
    const approved = await send(stack.url, 'POST', `/v1/cases/${own.case_id}/review`, {
      token: tokens['director-1'],
      body: { decision: 'approve', rationale: 'Relocation' },
    });
    expect(approved.status).toBe(200);
    const { context, page, errors } = await newPage();
    await signIn(page, 'counselor-1');
    // No transfers or compliance for a counselor.
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents()).toEqual([
      'My queue',
    ]);
    await page.getByRole('heading', { name: 'My queue' }).waitFor();
    await until(async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      return (await page.locator('article', { hasText: 'client-006' }).count()) > 0;
    });
    const clients = await page.locator('article .client').allTextContents();
    expect(clients.length).toBeGreaterThan(0);
    expect(clients.every((c) => c === 'client-006')).toBe(true);
    await shot(page, 'queue-counselor');

    const theirs = await caseOf('client-008');
    await page.goto(`${stack.url}/#/cases/${theirs.case_id}`);
    await page.getByRole('heading', { name: 'Case not found' }).waitFor();
    expect(await page.textContent('main')).not.toContain('client-008');
    await page.goto(`${stack.url}/#/transfers/${transferId}`);
    await page.getByRole('heading', { name: 'Not for your role' }).waitFor();
    expect(errors).toEqual([]);
    await context.close();
  });

  test('when compliance filters the audit trail, verifies the chain and asks for a client’s disclosures, then the page shows each answer', async () => {
    const { context, page, errors } = await newPage();
    await signIn(page, 'compliance-1');
    await page.getByRole('heading', { name: 'Compliance' }).waitFor();
    const { case_id } = await caseOf('client-008');
    await page.getByRole('form', { name: 'Filter the audit trail' }).getByLabel('Case id').fill(case_id);
    await page.getByRole('button', { name: 'Show events' }).click();
    const events = page.locator('table.events');
    await events.waitFor();
    expect(await events.textContent()).toContain('decision.approved');
    await page.getByRole('button', { name: 'Export as CSV' }).click();
    await page.getByRole('link', { name: /Save audit-.*\.csv/ }).waitFor();
    await page.getByRole('button', { name: 'Verify the audit chain' }).click();
    expect(await page.getByTestId('verify-result').textContent()).toBe("Your agency's chain is whole.");
    await page.getByRole('form', { name: 'Accounting of disclosures' }).getByLabel('Client id').fill('client-008');
    await page.getByRole('button', { name: 'Show disclosures' }).click();
    await page.getByText('Nothing about client-008 was disclosed').waitFor();
    await shot(page, 'compliance');
    expect(await accessibilityProblems(page)).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  test('when a case has its closure letter, then its page draws the referral loop and opens the letter as a PDF', async () => {
    // client-008 was approved from the queue above; the rest of the way through the API, as the care team would.
    const { case_id } = await caseOf('client-008');
    const act = async (path: string, userId: string, body: unknown) => {
      const res = await send<any>(stack.url, 'POST', `/v1/cases/${case_id}/${path}`, { token: tokens[userId], body });
      expect({ path, status: res.status, body: res.status === 200 ? null : res.body }).toEqual({
        path,
        status: 200,
        body: null,
      });
      return res.body;
    };
    // The agency's today (Chicago), not the machine's: after 6 p.m. there, UTC is already tomorrow.
    const day = localDate(Date.now(), 'America/Chicago');
    await act('conversation', 'counselor-3', { heldOn: day, clientChoice: 'accept_proposed', lastSessionDate: day });
    await act('referrals', 'staff-1', {
      candidates: [
        {
          providerId: 'clinician-4',
          name: 'Dr. Taylor Receiver',
          external: false,
          contact: 'clinician-4@demo.example',
        },
      ],
    });
    const sent = await eventually(async () => {
      const c = await send<any>(stack.url, 'GET', `/v1/cases/${case_id}`, { token: tokens['director-1'] });
      return c.body.process.referrals.find((r: { state: string }) => r.state === 'sent');
    });
    await act(`referrals/${sent.referralId}/response`, 'staff-1', { response: 'accepted' });
    await act(`referrals/${sent.referralId}/appointment`, 'staff-1', {
      scheduledFor: new Date(Date.now() + 5 * 86_400_000).toISOString(),
    });
    await eventually(async () => (await caseOf('client-008')).step === 'follow_up');

    const { context, page, errors } = await newPage();
    await signIn(page, 'director-1');
    await page.goto(`${stack.url}/#/cases/${case_id}`);
    const loop = page.getByRole('figure', { name: /Referral 1 to Dr. Taylor Receiver/ });
    await loop.waitFor();
    expect(await loop.locator('li.visited').allTextContents()).toEqual(
      expect.arrayContaining(['proposed', 'sent', 'accepted', 'first appointment scheduled']),
    );
    expect(await loop.locator('li[aria-current="step"]').textContent()).toBe('first appointment scheduled');
    const [pdf] = await Promise.all([
      context.waitForEvent('page'),
      page.getByRole('button', { name: 'Open the letter (PDF)' }).click(),
    ]);
    expect(pdf.url()).toMatch(/^blob:http:\/\/127\.0\.0\.1:\d+\//);
    await shot(page, 'case-letter');
    expect(await accessibilityProblems(page)).toEqual([]);
    const reads = await stack.db
      .selectFrom('audit_events')
      .select('actor_id')
      .where('case_id', '=', case_id)
      .where('action', '=', 'case.viewed.letter')
      .execute();
    expect(reads.map((r) => r.actor_id)).toContain('director-1');
    expect(errors).toEqual([]);
    await context.close();
  });

  test('when the pages are seen on a tablet, then none is wider than the screen', async () => {
    const context = await browser.newContext({ viewport: { width: 768, height: 1024 }, hasTouch: true });
    const page = await context.newPage();
    await page.goto(`${stack.url}/`);
    await page.getByLabel('API token').fill(tokens['director-1']!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const { case_id } = await caseOf('client-008');
    for (const [name, hash, ready] of [
      ['queue', '#/queue', 'article.card'],
      ['transfer', `#/transfers/${transferId}`, '[data-testid="opened"]'],
      ['case', `#/cases/${case_id}`, 'table.timeline tbody tr'],
    ] as const) {
      await page.goto(`${stack.url}/${hash}`);
      await page.locator(ready).first().waitFor();
      const overflow = await page.evaluate(() => {
        const root = (
          globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }
        ).document.documentElement;
        return root.scrollWidth - root.clientWidth;
      });
      expect({ name, overflow }).toEqual({ name, overflow: 0 });
      await shot(page, `tablet-${name}`);
    }
    await context.close();
  });

  test("when someone asks for a case's timeline, then they get who, role, what, when and outcome only, and a counselor gets another counselor's as a 404", async () => {
    const { case_id } = await caseOf('client-008');
    const timeline = await send<any>(stack.url, 'GET', `/v1/cases/${case_id}/timeline`, { token: tokens['staff-1'] });
    expect(timeline.status).toBe(200);
    expect(timeline.body.events.map((e: { action: string }) => e.action)).toEqual(
      expect.arrayContaining(['case.opened', 'decision.approved']),
    );
    for (const event of timeline.body.events) {
      expect(Object.keys(event).sort()).toEqual(['action', 'actorId', 'actorRole', 'at', 'outcome', 'reason', 'seq']);
    }
    const denied = await send<any>(stack.url, 'GET', `/v1/cases/${case_id}/timeline`, { token: tokens['counselor-1'] });
    expect(denied.status).toBe(404);
    const me = await send<any>(stack.url, 'GET', '/v1/me', { token: tokens['counselor-1'] });
    expect(me.body).toMatchObject({ userId: 'counselor-1', role: 'counselor', agencyId });
    expect(me.body.permissions).toContain('recordConversation');
    expect(me.body.permissions).not.toContain('reviewDecision');
  });
});
