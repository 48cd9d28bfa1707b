import { type Kysely, type Transaction, sql } from 'kysely';
import type { Role } from '../domain/case';
import type { Policy } from '../domain/process';
import { ACTION_KINDS, type TaskSpec } from '../domain/work-queue';
import { enqueueStaffEmail } from './outbox';
import type { Database, TaskState } from './schema';

/**
 * Tells a person that a task now waits for them: an email with the due date and a link to the case, and nothing
 * about the client (not even the kind of task: a caring contact alone would say the client was at risk).
 */
export async function notifyAssignee(
  trx: Transaction<Database>,
  task: {
    taskId: string;
    agencyId: string;
    /** null: a task about the agency, not one case (a reconcile drift report). */
    caseId: string | null;
    assigneeId: string;
    dueAt: Date | null;
    escalated: boolean;
  },
): Promise<void> {
  // Someone with no address on record reads their queue instead: an email that cannot leave helps nobody.
  const user = await trx
    .selectFrom('users')
    .select('email')
    .where('agency_id', '=', task.agencyId)
    .where('user_id', '=', task.assigneeId)
    .executeTakeFirst();
  if (!user?.email) return;
  const due = task.dueAt ? ` by ${task.dueAt.toISOString().slice(0, 16).replace('T', ' ')} UTC` : '';
  await enqueueStaffEmail(trx, {
    messageKey: `task:${task.taskId}:to:${task.assigneeId}`,
    agencyId: task.agencyId,
    caseId: task.caseId,
    toUserId: task.assigneeId,
    subject: task.escalated ? 'handoff: a case was escalated to you' : 'handoff: a task is waiting for you',
    text: task.caseId
      ? `${task.escalated ? 'A case was escalated to you' : 'A task on a case is assigned to you'}${due}. Open the case in handoff to see what it needs.`
      : `A task is assigned to you${due}. Open your queue in handoff to see what it needs.`,
    caseLink: task.caseId ? `/v1/cases/${task.caseId}` : '/v1/tasks',
  });
}

/**
 * The director who takes an escalation of this level: the agency's covering directors in order (policy), else its
 * active directors by id; never the case's own counselor. Null only when the agency has no director at all.
 */
export async function coveringDirector(
  db: Kysely<Database>,
  agencyId: string,
  policy: Policy,
  level: number,
  counselorId: string,
): Promise<string | null> {
  const named = (policy.coveringDirectors ?? []).filter((id) => id !== counselorId);
  const directors = named.length
    ? named
    : (
        await db
          .selectFrom('users')
          .select('user_id')
          .where('agency_id', '=', agencyId)
          .where('role', '=', 'clinical_director')
          .where('active', '=', true)
          .where('user_id', '!=', counselorId)
          .orderBy('user_id')
          .execute()
      ).map((u) => u.user_id);
  if (directors.length === 0) return null;
  return directors[Math.min(level, directors.length) - 1]!;
}

export interface OpenedTask {
  taskId: string;
  kind: string;
  assigneeId: string | null;
  assigneeRole: string;
}

/**
 * Opens the case's waits that are not open yet and closes the open ones it no longer has, in the caller's
 * transaction. Tasks a person closes (outreach, delivery failures) are left alone. Answers the tasks it opened.
 */
export async function syncCaseTasks(
  db: Transaction<Database>,
  input: {
    agencyId: string;
    caseId: string;
    counselorId: string;
    policy: Policy;
    waits: TaskSpec[];
    ended: boolean;
    /** The case row was written in this transaction, over its reservation: it has no task to find or close. */
    opening?: boolean;
  },
): Promise<OpenedTask[]> {
  const opened: OpenedTask[] = [];
  // One read of the case's tasks: a wait already open (or once closed) costs no insert and no director lookup.
  const known = new Set(
    input.opening
      ? []
      : (await db.selectFrom('tasks').select('task_key').where('case_id', '=', input.caseId).execute()).map(
          (t) => t.task_key,
        ),
  );
  for (const wait of input.waits) {
    if (known.has(wait.key)) continue;
    const assigneeId =
      wait.level !== undefined
        ? await coveringDirector(db, input.agencyId, input.policy, wait.level, input.counselorId)
        : wait.assigneeId;
    const row = await db
      .insertInto('tasks')
      .values({
        task_key: wait.key,
        agency_id: input.agencyId,
        case_id: input.caseId,
        kind: wait.kind,
        assignee_role: wait.assigneeRole,
        assignee_id: assigneeId,
        detail: wait.detail,
        due_at: wait.dueAt ? new Date(wait.dueAt) : null,
        level: wait.level ?? null,
      })
      .onConflict((oc) => oc.column('task_key').doNothing())
      .returning(['task_id', 'kind', 'assignee_id', 'assignee_role'])
      .executeTakeFirst();
    if (row?.assignee_id) {
      await notifyAssignee(db, {
        taskId: row.task_id,
        agencyId: input.agencyId,
        caseId: input.caseId,
        assigneeId: row.assignee_id,
        dueAt: wait.dueAt ? new Date(wait.dueAt) : null,
        escalated: wait.kind.startsWith('escalation.'),
      });
    }
    if (row)
      opened.push({
        taskId: row.task_id,
        kind: row.kind,
        assigneeId: row.assignee_id,
        assigneeRole: row.assignee_role,
      });
  }
  if (input.opening) return opened;
  const keep = input.waits.map((w) => w.key);
  let close = db
    .updateTable('tasks')
    .set({
      state: input.ended ? 'cancelled' : 'done',
      done_at: new Date(),
      closed_by: 'system',
      closed_reason: input.ended ? 'the case ended' : 'what it waited for happened',
      updated_at: new Date(),
    })
    .where('case_id', '=', input.caseId)
    .where('state', '=', 'open')
    .where('kind', 'not in', [...ACTION_KINDS]);
  if (keep.length) close = close.where('task_key', 'not in', keep);
  await close.execute();
  return opened;
}

export type QueueView = 'mine' | 'agency';

export interface TaskQuery {
  agencyId: string;
  user: { id: string; role: Role };
  view: QueueView;
  state: TaskState;
  caseId?: string;
  kind?: string;
  /** Only tasks on these cases (a counselor's own), when given. */
  counselorId?: string;
  after?: { overdue: boolean; dueAt: string | null; taskId: string };
  limit: number;
  now: Date;
}

/**
 * A page of the queue: for "mine", tasks assigned to the user or (unassigned) to their role; for "agency", all of
 * the agency's. Overdue first, then by due time (none last), then by id, so a cursor is stable.
 */
export async function listTasks(db: Kysely<Database>, q: TaskQuery) {
  const overdue = sql<boolean>`(t.due_at is not null and t.due_at < ${q.now})`;
  let query = db
    .selectFrom('tasks as t')
    // A task about the agency (a reconcile drift report) has no case.
    .leftJoin('cases as c', 'c.case_id', 't.case_id')
    .select([
      't.task_id',
      't.case_id',
      't.kind',
      't.assignee_role',
      't.assignee_id',
      't.detail',
      't.state',
      't.due_at',
      't.created_at',
      't.done_at',
      't.closed_by',
      'c.client_id',
      'c.counselor_id',
    ])
    .select(overdue.as('overdue'))
    .where('t.agency_id', '=', q.agencyId)
    .where('t.state', '=', q.state);
  if (q.view === 'mine') {
    query = query.where((eb) =>
      eb.or([
        eb('t.assignee_id', '=', q.user.id),
        eb.and([eb('t.assignee_id', 'is', null), eb('t.assignee_role', '=', q.user.role)]),
      ]),
    );
  }
  if (q.counselorId) query = query.where('c.counselor_id', '=', q.counselorId);
  if (q.caseId) query = query.where('t.case_id', '=', q.caseId);
  if (q.kind) query = query.where('t.kind', '=', q.kind);
  if (q.after) {
    const { overdue: wasOverdue, dueAt, taskId } = q.after;
    // The key (not overdue, due_at nulls last, task_id), compared as a tuple.
    const key = sql`(not ${overdue}, coalesce(t.due_at, 'infinity'::timestamptz), t.task_id)`;
    query = query.where(
      sql<boolean>`${key} > (${!wasOverdue}, coalesce(${dueAt}::timestamptz, 'infinity'::timestamptz), ${taskId}::uuid)`,
    );
  }
  return query
    .orderBy(sql`not ${overdue}`)
    .orderBy(sql`coalesce(t.due_at, 'infinity'::timestamptz)`)
    .orderBy('t.task_id')
    .limit(q.limit)
    .execute();
}

export async function findTask(db: Kysely<Database>, agencyId: string, taskId: string) {
  return db
    .selectFrom('tasks as t')
    .leftJoin('cases as c', 'c.case_id', 't.case_id')
    .selectAll('t')
    .select('c.counselor_id')
    .where('t.agency_id', '=', agencyId)
    .where('t.task_id', '=', taskId)
    .executeTakeFirst();
}

export async function reassignTask(
  db: Kysely<Database>,
  agencyId: string,
  taskId: string,
  assignee: { id: string; role: Role },
): Promise<void> {
  await db
    .updateTable('tasks')
    .set({ assignee_id: assignee.id, assignee_role: assignee.role, updated_at: new Date() })
    .where('agency_id', '=', agencyId)
    .where('task_id', '=', taskId)
    .execute();
}

/** A person marks a task done (an outreach made); answers whether it was open. */
export async function completeTask(
  db: Kysely<Database>,
  agencyId: string,
  taskId: string,
  by: string,
  note: string | null,
): Promise<boolean> {
  const result = await db
    .updateTable('tasks')
    .set({ state: 'done', done_at: new Date(), closed_by: by, closed_reason: note, updated_at: new Date() })
    .where('agency_id', '=', agencyId)
    .where('task_id', '=', taskId)
    .where('state', '=', 'open')
    .executeTakeFirst();
  return (result.numUpdatedRows ?? 0n) > 0n;
}

/** The kind of a reconcile's drift report in a queue. */
export const DRIFT_TASK_KIND = 'reconcile.drift';

export interface DriftTaskSpec {
  /** Stable while the same drift persists, so a run that finds it again opens nothing. */
  key: string;
  /** null: the operator's queue (the admin role, no agency). */
  agencyId: string | null;
  assigneeRole: Role;
  detail: string;
}

/**
 * Opens a task for each drift report not open yet and closes the open ones whose drift is gone (or changed: its
 * successor has its own key), in one transaction. Answers how many it opened and closed.
 */
export async function syncDriftTasks(
  db: Kysely<Database>,
  specs: DriftTaskSpec[],
  now: Date,
): Promise<{ opened: number; closed: number }> {
  return db.transaction().execute(async (trx) => {
    let opened = 0;
    for (const spec of specs) {
      const row = await trx
        .insertInto('tasks')
        .values({
          task_key: spec.key,
          agency_id: spec.agencyId,
          case_id: null,
          kind: DRIFT_TASK_KIND,
          assignee_role: spec.assigneeRole,
          assignee_id: null,
          detail: spec.detail,
          due_at: now,
        })
        // The same drift back after it was gone opens its task again; while it persists, nothing changes.
        .onConflict((oc) =>
          oc
            .column('task_key')
            .doUpdateSet({
              state: 'open',
              done_at: null,
              closed_by: null,
              closed_reason: null,
              due_at: now,
              updated_at: now,
            })
            .where('tasks.state', '!=', 'open'),
        )
        .returning('task_id')
        .executeTakeFirst();
      if (row) opened++;
    }
    let close = trx
      .updateTable('tasks')
      .set({
        state: 'done',
        done_at: now,
        closed_by: 'system',
        closed_reason: 'the reconcile no longer finds this drift',
        updated_at: now,
      })
      .where('kind', '=', DRIFT_TASK_KIND)
      .where('state', '=', 'open');
    if (specs.length)
      close = close.where(
        'task_key',
        'not in',
        specs.map((s) => s.key),
      );
    const closed = await close.executeTakeFirst();
    return { opened, closed: Number(closed.numUpdatedRows ?? 0n) };
  });
}
