import { randomUUID } from 'node:crypto';
import { addDays, localDate, readableDate, startOfLocalDay } from '../domain/time';
import { COUNSELOR, CaseDriver, STAFF } from './support/cases';
import { type TestStack, startStack } from './support/stack';

/** Dates are the agency's dates: today, expiries and deadlines in its time zone; letters as its people read them. */

describe('the agency’s calendar', () => {
  test('when a day is read in a zone, then it starts at local midnight, across daylight-saving changes too', () => {
    expect(new Date(startOfLocalDay('2026-11-29', 'America/Chicago')).toISOString()).toBe('2026-11-29T06:00:00.000Z');
    expect(new Date(startOfLocalDay('2026-07-04', 'America/Chicago')).toISOString()).toBe('2026-07-04T05:00:00.000Z');
    expect(new Date(startOfLocalDay('2026-03-08', 'America/New_York')).toISOString()).toBe('2026-03-08T05:00:00.000Z');
    expect(new Date(startOfLocalDay('2026-03-09', 'America/New_York')).toISOString()).toBe('2026-03-09T04:00:00.000Z');
    // 7 p.m. in Chicago on the 29th is already the 30th in UTC, and still the 29th for the agency.
    expect(localDate(Date.parse('2026-11-30T01:00:00Z'), 'America/Chicago')).toBe('2026-11-29');
    expect(readableDate('2026-11-29', 'en-US')).toBe('November 29, 2026');
    expect(readableDate('2026-11-29', 'en-GB')).toBe('29 November 2026');
  });
});

describe('consent expiry in the agency’s zone', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.close();
  });

  // A zone whose date differs from UTC's right now: behind it in the UTC morning, ahead of it in the afternoon.
  const behind = new Date().getUTCHours() < 12;
  const zone = behind ? 'Etc/GMT+12' : 'Etc/GMT-14';
  const utcToday = new Date().toISOString().slice(0, 10);
  const agencyToday = localDate(Date.now(), zone);

  async function agencyCase() {
    const agencyId = `agency-tz-${randomUUID().slice(0, 6)}`;
    const admin = { id: 'admin-1', role: 'admin' as const, agencyId };
    const set = await stack.request('PUT', `/v1/agencies/${agencyId}/policy`, {
      body: { agencyName: 'Far West', agencyPhone: '555-0199', policy: { timeZone: zone, locale: 'en-US' } },
      actor: admin,
    });
    expect(set.status).toBe(200);
    const c = await CaseDriver.open(stack, { agencyId, lastDay: addDays(agencyToday, 40) });
    await c.act(
      'review',
      { decision: 'approve', rationale: 'ok' },
      { id: 'director-1', role: 'clinical_director', agencyId },
    );
    await c.act(
      'conversation',
      { heldOn: agencyToday, clientChoice: 'accept_proposed', lastSessionDate: agencyToday },
      { ...COUNSELOR, agencyId },
    );
    return { c, agencyId };
  }

  const consent = (expiresOn: string) => ({
    recipientProviderId: 'northside',
    disclosed: 'treatment summary',
    purpose: 'continuity of care',
    expiresOn,
    coversSubstanceUseRecords: false,
    revocable: true,
    signedOn: behind ? agencyToday : utcToday,
  });

  test('when a release expires on the agency’s today, then it holds until the agency’s midnight, not UTC’s', async () => {
    const { c, agencyId } = await agencyCase();
    const staff = { ...STAFF, agencyId };
    if (behind) {
      // The agency's today is UTC's yesterday: still valid for the agency.
      await c.act('consents', consent(agencyToday), staff);
      await c.act(
        'referrals',
        { candidates: [{ providerId: 'northside', name: 'Northside', external: true, contact: '555-0100' }] },
        staff,
      );
      const view = await c.until((v) => v.process.referrals[0]?.state === 'sent');
      expect(view.process.referrals[0].consentId).toBeTruthy();
    } else {
      // UTC's today is already the agency's yesterday: expired for the agency.
      const refused = await c.act('consents', consent(utcToday), staff, 400);
      expect(refused.detail).toBe(`the release expired on ${utcToday}`);
    }
  });
});
