import type { Kysely } from 'kysely';
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

export async function findCase(db: Kysely<Database>, caseId: string): Promise<CaseRow | undefined> {
  return db.selectFrom('cases').selectAll().where('case_id', '=', caseId).executeTakeFirst();
}
