import { type Kysely, sql } from 'kysely';

/**
 * The work queue: every task belongs to an agency, has a state (open, done, cancelled), a due time, and an id
 * the API can name. Existing tasks keep their keys; those already done are marked so.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('tasks')
    .addColumn('task_id', 'uuid', (c) =>
      c
        .notNull()
        .defaultTo(sql`gen_random_uuid()`)
        .unique(),
    )
    .addColumn('agency_id', 'text')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('open'))
    .addColumn('due_at', 'timestamptz')
    .addColumn('level', 'integer')
    .addColumn('closed_by', 'text')
    .addColumn('closed_reason', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`update tasks t set agency_id = c.agency_id from cases c where c.case_id = t.case_id`.execute(db);
  await sql`update tasks set state = 'done', closed_reason = 'done before the work queue existed'
    where done_at is not null`.execute(db);
  await sql`alter table tasks alter column agency_id set not null`.execute(db);
  // "What waits for me": open tasks of a person, or of a role, overdue first.
  await sql`create index tasks_open_by_assignee on tasks (agency_id, assignee_id, due_at) where state = 'open'`.execute(
    db,
  );
  await sql`create index tasks_open_by_role on tasks (agency_id, assignee_role, due_at) where state = 'open'`.execute(
    db,
  );
  await sql`create index tasks_open_by_agency on tasks (agency_id, due_at, task_id) where state = 'open'`.execute(db);
  await db.schema.dropIndex('tasks_case_idx').execute();
  await db.schema.createIndex('tasks_case_idx').on('tasks').columns(['case_id', 'state']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('tasks_case_idx').execute();
  await db.schema.createIndex('tasks_case_idx').on('tasks').column('case_id').execute();
  for (const index of ['tasks_open_by_assignee', 'tasks_open_by_role', 'tasks_open_by_agency']) {
    await db.schema.dropIndex(index).execute();
  }
  for (const column of [
    'task_id',
    'agency_id',
    'state',
    'due_at',
    'level',
    'closed_by',
    'closed_reason',
    'updated_at',
  ]) {
    await db.schema.alterTable('tasks').dropColumn(column).execute();
  }
}
