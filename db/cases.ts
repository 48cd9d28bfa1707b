import { type Kysely, sql } from 'kysely';
import type { CaseRow, Database, NewCase } from './schema';

/** Inserts the case unless it exists; returns whether this call created it. */
export async function insertCase(db: Kysely<Database>, row: NewCase): Promise<boolean> {
  const result = await db
    .insertInto('cases')
    .values(row)
    .onConflict((oc) => oc.column('case_id').doNothing())
    .executeTakeFirst();
  return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
}

/** A case by its id, for the worker (case ids are server-made UUIDs, unique across agencies). */
export async function findCase(db: Kysely<Database>, caseId: string): Promise<CaseRow | undefined> {
  return db.selectFrom('cases').selectAll().where('case_id', '=', caseId).executeTakeFirst();
}

/** A case of one agency: another agency's case is not found. */
export async function findAgencyCase(
  db: Kysely<Database>,
  agencyId: string,
  caseId: string,
): Promise<CaseRow | undefined> {
  return db
    .selectFrom('cases')
    .selectAll()
    .where('agency_id', '=', agencyId)
    .where('case_id', '=', caseId)
    .executeTakeFirst();
}

export type Reservation =
  | { outcome: 'reserved' }
  | { outcome: 'same_case' }
  | { outcome: 'client_has_open_case'; caseId: string; status: string; createdAt: Date };

/**
 * Reserves a case row (status `opening`) before its workflow starts. The unique index on
 * (agency, client) for opening/open cases makes "one open case per client" atomic.
 */
export async function reserveCase(
  db: Kysely<Database>,
  row: NewCase & { status: 'opening' },
  retried = false,
): Promise<Reservation> {
  const inserted = await db
    .insertInto('cases')
    .values(row)
    .onConflict((oc) => oc.doNothing())
    .returning('case_id')
    .executeTakeFirst();
  if (inserted) return { outcome: 'reserved' };
  const same = await db.selectFrom('cases').select('agency_id').where('case_id', '=', row.case_id).executeTakeFirst();
  if (same) return { outcome: 'same_case' };
  const open = await db
    .selectFrom('cases')
    .select(['case_id', 'status', 'created_at'])
    .where('agency_id', '=', row.agency_id)
    .where('client_id', '=', row.client_id)
    .where('status', 'in', ['opening', 'open'])
    .executeTakeFirst();
  // The other case ended between the insert and this read: try once more.
  if (!open) {
    if (retried) throw new Error(`case ${row.case_id} could not be reserved`);
    return reserveCase(db, row, true);
  }
  return { outcome: 'client_has_open_case', caseId: open.case_id, status: open.status, createdAt: open.created_at };
}

/** Gives up a reservation whose workflow never started; an opened case is never touched. */
export async function releaseReservation(db: Kysely<Database>, agencyId: string, caseId: string): Promise<boolean> {
  const result = await db
    .deleteFrom('cases')
    .where('agency_id', '=', agencyId)
    .where('case_id', '=', caseId)
    .where('status', '=', 'opening')
    .executeTakeFirst();
  return (result.numDeletedRows ?? 0n) > 0n;
}

/** Writes the opened case over its reservation (or anew); a case already past opening is left alone. */
export async function writeOpenedCase(db: Kysely<Database>, row: NewCase): Promise<boolean> {
  const { case_id: _id, created_at: _created, ...update } = row;
  const result = await db
    .insertInto('cases')
    .values(row)
    .onConflict((oc) =>
      oc
        .column('case_id')
        .doUpdateSet({ ...update, updated_at: sql`now()` })
        .where('cases.status', '=', 'opening'),
    )
    .executeTakeFirst();
  return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
}

/** A case's closing letter (HTML, PDF and checksums). */
export async function findLetter(db: Kysely<Database>, caseId: string) {
  return db.selectFrom('letters').selectAll().where('case_id', '=', caseId).executeTakeFirst();
}

/** Where the case's letter stands now (the outbox sender moves it on after the workflow issued it). */
export async function letterDelivery(db: Kysely<Database>, caseId: string) {
  return (await db.selectFrom('letters').select('delivery').where('case_id', '=', caseId).executeTakeFirst())?.delivery;
}
