import { randomUUID } from 'node:crypto';
import type { Db } from '../../db/database';
import { clientRow, clinicianRow, upsertReference } from '../../db/reference';

export interface Caseload {
  agencyId: string;
  counselorId: string;
  clientIds: string[];
  receivers: { id: string; capacity: number; specialties: string[] }[];
}

/** A counselor with `clients` active clients and the given receiving clinicians, written straight to PostgreSQL. */
export async function seedCaseload(
  db: Db,
  options: {
    clients: number;
    receivers: { capacity: number; specialties?: string[] }[];
    client?: (index: number) => Partial<Parameters<typeof clientRow>[1]>;
  },
): Promise<Caseload> {
  const tag = randomUUID().slice(0, 8);
  const agencyId = `agency-${tag}`;
  const counselorId = `counselor-${tag}`;
  await upsertReference(
    db,
    'clinicians',
    clinicianRow(counselorId, {
      agencyId,
      name: 'Departing Counselor',
      capacity: options.clients,
      specialties: [],
      active: true,
      contact: 'ext 100',
    }),
  );
  const receivers = options.receivers.map((r, i) => ({
    id: `receiver-${tag}-${i}`,
    capacity: r.capacity,
    specialties: r.specialties ?? [],
  }));
  for (const r of receivers) {
    await upsertReference(
      db,
      'clinicians',
      clinicianRow(r.id, {
        agencyId,
        name: `Receiver ${r.id}`,
        capacity: r.capacity,
        specialties: r.specialties,
        active: true,
        contact: `${r.id}@agency.example`,
      }),
    );
  }
  const clientIds: string[] = [];
  const rows = Array.from({ length: options.clients }, (_, i) => {
    const clientId = `c-${tag}-${String(i).padStart(5, '0')}`;
    clientIds.push(clientId);
    return clientRow(clientId, {
      agencyId,
      name: `Client ${i}`,
      counselorId,
      active: true,
      riskFlags: [],
      contact: { channels: [{ channel: 'portal', safe: true }], noContactAtHome: false },
      hasSubstanceUseRecords: false,
      needs: [],
      ...(options.client?.(i) ?? {}),
    });
  });
  for (let i = 0; i < rows.length; i += 1000) {
    await db
      .insertInto('clients')
      .values(rows.slice(i, i + 1000))
      .execute();
  }
  return { agencyId, counselorId, clientIds, receivers };
}

/** How many of a transfer's cases have been opened by the case itself (not only reserved by the transfer). */
export async function openedCases(db: Db, transferId: string): Promise<number> {
  const { n } = await db
    .selectFrom('cases')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('transfer_id', '=', transferId)
    .where('status', '!=', 'opening')
    .executeTakeFirstOrThrow();
  return Number(n);
}
