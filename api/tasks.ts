import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { appendAuditEvent } from '../db/audit';
import type { Database } from '../db/schema';
import { completeTask, findTask, listTasks, notifyAssignee, reassignTask } from '../db/tasks';
import { findUser } from '../db/users';
import { PERMISSIONS, may } from '../domain/roles';
import { ACTION_KINDS } from '../domain/work-queue';
import { requireRoles, userOf } from './auth';
import { deniedRead } from './denied';
import { actorOf, parse } from './http';
import { problem } from './problem';
import { id, text } from './schemas';

export const taskQuery = z.strictObject({
  view: z.enum(['mine', 'agency']).default('mine'),
  state: z.enum(['open', 'done', 'cancelled']).default('open'),
  caseId: z.uuid().optional(),
  kind: z
    .string()
    .regex(/^[a-z_.]{1,60}$/)
    .optional(),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,400}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
export const taskIdParams = z.strictObject({ taskId: z.uuid() });
export const reassignBody = z.strictObject({ assigneeId: id }).meta({ id: 'ReassignTask' });
export const completeBody = z.strictObject({ note: text(500).optional() }).meta({ id: 'CompleteTask' });

interface Cursor {
  overdue: boolean;
  dueAt: string | null;
  taskId: string;
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(raw: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Cursor;
    if (
      typeof c.overdue === 'boolean' &&
      (c.dueAt === null || typeof c.dueAt === 'string') &&
      z.uuid().safeParse(c.taskId).success
    )
      return c;
  } catch {
    // fall through
  }
  throw problem(400, 'the cursor is not one this list gave', {
    errors: [{ field: 'query.cursor', message: 'unknown cursor' }],
  });
}

/** The work queue: what waits for me (or my role), overdue first; a director's view of the agency; reassignment. */
export function taskRoutes({ db }: { db: Kysely<Database> }): Router {
  const router = Router();

  /** A page of tasks, overdue first; reading it is audited once, not per task. */
  router.get('/v1/tasks', async (req, res) => {
    const user = userOf(req);
    requireRoles(user, PERMISSIONS.readQueue, 'reading the work queue');
    const query = parse(taskQuery, req.query, 'query');
    if (query.view === 'agency') requireRoles(user, PERMISSIONS.readAgencyQueue, "reading the agency's queue");
    const now = new Date();
    const rows = await listTasks(db, {
      agencyId: user.agencyId,
      user: { id: user.id, role: user.role },
      view: query.view,
      state: query.state,
      ...(query.caseId ? { caseId: query.caseId } : {}),
      ...(query.kind ? { kind: query.kind } : {}),
      // A counselor's view never reaches another counselor's cases.
      ...(user.role === 'counselor' ? { counselorId: user.id } : {}),
      ...(query.cursor ? { after: decodeCursor(query.cursor) } : {}),
      limit: query.limit + 1,
      now,
    });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    await appendAuditEvent(db, {
      eventKey: `tasks:listed:${randomUUID()}`,
      agencyId: user.agencyId,
      actor: { id: user.id, role: user.role },
      action: 'tasks.listed',
      outcome: 'done',
      requestId: req.id,
      sourceAddress: req.ip ?? null,
      after: { view: query.view, state: query.state, count: page.length },
    });
    res.json({
      items: page.map((t) => ({
        taskId: t.task_id,
        caseId: t.case_id,
        clientId: t.client_id,
        kind: t.kind,
        assignee: { role: t.assignee_role, userId: t.assignee_id },
        state: t.state,
        detail: t.detail,
        dueAt: t.due_at?.toISOString() ?? null,
        overdue: t.overdue,
        createdAt: t.created_at.toISOString(),
        closedAt: t.done_at?.toISOString() ?? null,
        closedBy: t.closed_by,
        case: t.case_id ? `/v1/cases/${t.case_id}` : null,
      })),
      next:
        rows.length > query.limit && last
          ? encodeCursor({ overdue: last.overdue, dueAt: last.due_at?.toISOString() ?? null, taskId: last.task_id })
          : null,
    });
  });

  /** A director hands a task to a named person of the agency who may do it. */
  router.post('/v1/tasks/:taskId/assignment', async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, PERMISSIONS.reassignTask, 'reassigning a task');
    const { taskId } = parse(taskIdParams, req.params, 'path');
    const { assigneeId } = parse(reassignBody, req.body, 'body');
    const task =
      (await findTask(db, user.agencyId, taskId)) ??
      (await deniedRead(db, req, user, { kind: 'task', id: taskId }, `no task ${taskId}`));
    if (task.state !== 'open') throw problem(409, `the task is already ${task.state}`, { rule: 'step' });
    const assignee = await findUser(db, user.agencyId, assigneeId);
    if (!assignee || !assignee.active)
      throw problem(422, `no active user ${assigneeId} in your agency`, {
        errors: [{ field: 'body.assigneeId', message: 'unknown user' }],
      });
    // The new assignee must be able to do what the task asks: a counselor only on their own case.
    const fits = assignee.role === task.assignee_role || assignee.role === 'clinical_director';
    if (!fits || (assignee.role === 'counselor' && assignee.user_id !== task.counselor_id)) {
      throw problem(422, `${assigneeId} (${assignee.role}) cannot take a ${task.kind} task`, { rule: 'role' });
    }
    if (task.kind.startsWith('escalation.') && assignee.user_id === task.counselor_id) {
      throw problem(422, "an escalation cannot go to the case's own counselor", { rule: 'separation_of_duties' });
    }
    await db.transaction().execute(async (trx) => {
      await reassignTask(trx, user.agencyId, taskId, { id: assignee.user_id, role: assignee.role });
      await notifyAssignee(trx, {
        taskId,
        agencyId: user.agencyId,
        caseId: task.case_id,
        assigneeId: assignee.user_id,
        dueAt: task.due_at,
        escalated: task.kind.startsWith('escalation.'),
      });
      await appendAuditEvent(trx, {
        eventKey: `task:${taskId}:assigned:${randomUUID()}`,
        agencyId: user.agencyId,
        actor,
        action: 'task.reassigned',
        caseId: task.case_id,
        outcome: 'done',
        requestId: req.id,
        sourceAddress: req.ip ?? null,
        before: { assigneeId: task.assignee_id, assigneeRole: task.assignee_role },
        after: { assigneeId: assignee.user_id, assigneeRole: assignee.role, kind: task.kind },
      });
    });
    res.json({ taskId, assignee: { role: assignee.role, userId: assignee.user_id } });
  });

  /**
   * Marks a task a person closes (an outreach made, a failed delivery handled) done. Waits close by themselves
   * when what they wait for happens, so they cannot be marked done here.
   */
  router.post('/v1/tasks/:taskId/completion', async (req, res) => {
    const actor = actorOf(req);
    const user = userOf(req);
    requireRoles(user, PERMISSIONS.completeTask, 'completing a task');
    const { taskId } = parse(taskIdParams, req.params, 'path');
    const { note } = parse(completeBody, req.body, 'body');
    const task = await findTask(db, user.agencyId, taskId);
    const mine =
      task &&
      (task.assignee_id === user.id ||
        (task.assignee_id === null && task.assignee_role === user.role) ||
        may(user.role, 'reassignTask'));
    if (!task || !mine) return deniedRead(db, req, user, { kind: 'task', id: taskId }, `no task ${taskId}`);
    if (!(ACTION_KINDS as readonly string[]).includes(task.kind)) {
      throw problem(409, `a ${task.kind} task closes by itself when its case moves on; act on the case`, {
        rule: 'step',
      });
    }
    const done = await db.transaction().execute(async (trx) => {
      const changed = await completeTask(trx, user.agencyId, taskId, user.id, note ?? null);
      if (changed) {
        await appendAuditEvent(trx, {
          eventKey: `task:${taskId}:done`,
          agencyId: user.agencyId,
          actor,
          action: 'task.completed',
          caseId: task.case_id,
          outcome: 'done',
          outcomeReason: note ?? null,
          requestId: req.id,
          sourceAddress: req.ip ?? null,
          after: { kind: task.kind },
        });
      }
      return changed;
    });
    if (!done) throw problem(409, `the task is already ${task.state}`, { rule: 'step' });
    res.json({ taskId, state: 'done' });
  });

  return router;
}
