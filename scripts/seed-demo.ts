import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { clientRow, clinicianRow, upsertReference } from '../db/reference';
import type { Database } from '../db/schema';
import { createToken, upsertUser, userForToken } from '../db/users';
import { ROLES, type Role } from '../domain/case';
import { DEFAULT_POLICY, type RiskFlag } from '../domain/process';
import { addDays, localDate } from '../domain/time';

export const DEMO_AGENCY = 'demo-agency';
export const DEMO_TRANSFER_COUNSELOR = 'counselor-3';
const DEMO_TIME_ZONE = 'America/Chicago';

const USERS: { id: string; role: Role; name: string }[] = [
  { id: 'staff-1', role: 'staff', name: 'Sam Intake' },
  { id: 'counselor-1', role: 'counselor', name: 'Casey Counselor' },
  { id: 'counselor-2', role: 'counselor', name: 'Jordan Counselor' },
  { id: 'counselor-3', role: 'counselor', name: 'Riley Counselor' },
  { id: 'director-1', role: 'clinical_director', name: 'Dr. Morgan Director' },
  { id: 'director-2', role: 'clinical_director', name: 'Dr. Avery Director' },
  { id: 'compliance-1', role: 'compliance', name: 'Quinn Compliance' },
  { id: 'admin-1', role: 'admin', name: 'Alex Admin' },
];

/**
 * `npm start` in embedded mode: a demo agency (counselors, directors, staff, compliance, an admin, a few
 * dozen clients) and one token per role, kept in `tokensFile` and reused while they are valid.
 */
export async function seedDemo(db: Kysely<Database>, tokensFile: string): Promise<Record<Role, string>> {
  await seedDemoAgency(db, DEMO_AGENCY);
  const saved: Partial<Record<Role, string>> = existsSync(tokensFile)
    ? (JSON.parse(readFileSync(tokensFile, 'utf8')) as Partial<Record<Role, string>>)
    : {};
  const tokens = {} as Record<Role, string>;
  for (const role of ROLES) {
    const known = saved[role];
    if (known && 'user' in (await userForToken(db, known))) {
      tokens[role] = known;
      continue;
    }
    const user = USERS.find((u) => u.role === role)!;
    tokens[role] = (
      await createToken(db, { agencyId: DEMO_AGENCY, userId: user.id }, { label: 'dev', days: 30 })
    ).token;
  }
  writeFileSync(tokensFile, `${JSON.stringify(tokens, null, 2)}\n`, { mode: 0o600 });
  return tokens;
}

/** The demo agency's users, policy, clinicians and 36 clients (counselor-3 has 12 of them), under `agencyId`. */
export async function seedDemoAgency(db: Kysely<Database>, agencyId: string): Promise<void> {
  // Every demo user has an address, so task and digest email lands in .data/mail.
  for (const user of USERS) await upsertUser(db, { ...user, agencyId, email: `${user.id}@demo.example` });
  await db
    .insertInto('agency_policies')
    .values({
      agency_id: agencyId,
      agency_name: 'Demo Counseling Center',
      agency_phone: '555-0100',
      // A US agency: its dates (today, deadlines, expiries) are Chicago's.
      policy: JSON.stringify({ ...DEFAULT_POLICY, timeZone: DEMO_TIME_ZONE, locale: 'en-US' }),
      updated_by: 'seed',
    })
    .onConflict((oc) => oc.column('agency_id').doNothing())
    .execute();
  const clinicians: [string, string, number, string[]][] = [
    ['counselor-1', 'Casey Counselor', 40, []],
    ['counselor-2', 'Jordan Counselor', 40, ['suicide_risk']],
    ['counselor-3', 'Riley Counselor', 40, ['domestic_violence', 'recent_relapse']],
    ['clinician-4', 'Dr. Taylor Receiver', 25, ['suicide_risk', 'grief']],
    ['clinician-5', 'Dr. Drew Receiver', 20, ['domestic_violence']],
  ];
  for (const [id, name, capacity, specialties] of clinicians) {
    await upsertReference(
      db,
      'clinicians',
      clinicianRow(id, {
        agencyId,
        name,
        capacity,
        specialties,
        active: true,
        contact: `${id}@demo.example`,
      }),
    );
  }
  const flags: RiskFlag[][] = [[], [], [], ['suicide_risk'], [], ['domestic_violence']];
  for (let i = 1; i <= 36; i++) {
    const riskFlags = flags[i % flags.length]!;
    await upsertReference(
      db,
      'clients',
      clientRow(`client-${String(i).padStart(3, '0')}`, {
        agencyId,
        name: `Demo Client ${i}`,
        counselorId: `counselor-${(i % 3) + 1}`,
        active: true,
        riskFlags,
        contact: riskFlags.includes('domestic_violence')
          ? {
              channels: [
                { channel: 'phone', safe: true },
                { channel: 'mail', safe: false },
              ],
              noContactAtHome: true,
            }
          : i % 2 === 0
            ? {
                channels: [
                  { channel: 'portal', safe: true },
                  { channel: 'email', safe: true },
                ],
                noContactAtHome: false,
                email: `client-${i}@demo.example`,
              }
            : {
                channels: [{ channel: 'mail', safe: true }],
                noContactAtHome: false,
                postalAddress: `${i} Demo Street\nSpringfield`,
              },
        hasSubstanceUseRecords: i % 7 === 0,
        needs: i % 9 === 0 ? ['grief'] : [],
      }),
    );
  }
}

/**
 * The demo's caseload transfer: counselor-3 relocates in three weeks. Started through the API as the demo staff
 * member, like any transfer, and only when counselor-3 has none yet, so a restart does not start a second.
 */
export async function startDemoTransfer(apiUrl: string, staffToken: string): Promise<string> {
  const headers = { authorization: `Bearer ${staffToken}`, 'content-type': 'application/json' };
  const listed = await fetch(`${apiUrl}/v1/transfers?endedWithinDays=366`, { headers });
  if (!listed.ok) return `could not list transfers (${listed.status})`;
  const { items } = (await listed.json()) as { items: { counselorId: string; transferId: string }[] };
  const existing = items.find((t) => t.counselorId === DEMO_TRANSFER_COUNSELOR);
  if (existing) return `${apiUrl}/#/transfers/${existing.transferId}`;
  const lastDay = addDays(localDate(Date.now(), DEMO_TIME_ZONE), 21);
  const started = await fetch(`${apiUrl}/v1/transfers`, {
    method: 'POST',
    headers: { ...headers, 'idempotency-key': `demo-transfer-${lastDay}` },
    body: JSON.stringify({ counselorId: DEMO_TRANSFER_COUNSELOR, lastDay, reason: 'counselor_relocation' }),
  });
  if (started.status !== 202) return `could not start the demo transfer (${started.status})`;
  const { transferId } = (await started.json()) as { transferId: string };
  return `${apiUrl}/#/transfers/${transferId}`;
}
