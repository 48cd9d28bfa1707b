import { type Kysely, sql } from 'kysely';

/**
 * Tasks that are about no one case: the reconcile's drift reports, one per agency (no case), or the operator's
 * (no agency either, when the drift cannot be placed in one).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('tasks')
    .alterColumn('case_id', (c) => c.dropNotNull())
    .execute();
  await db.schema
    .alterTable('tasks')
    .alterColumn('agency_id', (c) => c.dropNotNull())
    .execute();
  await sql`create index tasks_open_by_kind on tasks (kind, agency_id) where state = 'open'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('tasks_open_by_kind').execute();
  await sql`delete from tasks where case_id is null or agency_id is null`.execute(db);
  await db.schema
    .alterTable('tasks')
    .alterColumn('agency_id', (c) => c.setNotNull())
    .execute();
  await db.schema
    .alterTable('tasks')
    .alterColumn('case_id', (c) => c.setNotNull())
    .execute();
}
