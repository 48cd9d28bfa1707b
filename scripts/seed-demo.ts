import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { clientRow, clinicianRow, upsertReference } from '../db/reference';
import type { Database } from '../db/schema';
import { createToken, upsertUser, userForToken } from '../db/users';
import { ROLES, type Role } from '../domain/case';
import { DEFAULT_POLICY, type RiskFlag } from '../domain/process';

export const DEMO_AGENCY = 'demo-agency';

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
  // Every demo user has an address, so task and digest email lands in .data/mail.
  for (const user of USERS) await upsertUser(db, { ...user, agencyId: DEMO_AGENCY, email: `${user.id}@demo.example` });
  await db
    .insertInto('agency_policies')
    .values({
      agency_id: DEMO_AGENCY,
      agency_name: 'Demo Counseling Center',
      agency_phone: '555-0100',
      // A US agency: its dates (today, deadlines, expiries) are Chicago's.
      policy: JSON.stringify({ ...DEFAULT_POLICY, timeZone: 'America/Chicago', locale: 'en-US' }),
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
        agencyId: DEMO_AGENCY,
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
        agencyId: DEMO_AGENCY,
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
