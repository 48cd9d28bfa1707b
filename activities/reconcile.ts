import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError, type WorkflowExecutionStatusName } from '@temporalio/client';
import type { Kysely } from 'kysely';
import { lastAnchor } from '../db/anchors';
import { integrateAuditChains, verifyChain } from '../db/audit';
import { DELIVERY_DEFAULTS, outboxRetryWindowMs } from '../db/outbox';
import {
  type CaseRowKey,
  agencyOfCaseByAudit,
  caseRowByWorkflowId,
  caseRowPage,
  clientsWithOpenCases,
  duplicatedAuditEvents,
  transferCounts,
  undeliveredMessages,
} from '../db/reconcile';
import type { Database } from '../db/schema';
import { type DriftTaskSpec, syncDriftTasks } from '../db/tasks';
import { STALE_RESERVATION_MS } from '../domain/case';
import {
  DRIFT_CHECKS,
  DRIFT_LABELS,
  type Drift,
  type DriftCheck,
  type ReconcileOptions,
  type ReconcileSummary,
  emptyDriftCounts,
} from '../domain/reconcile';

export interface ReconcileDeps {
  db: Kysely<Database>;
  temporal: Client;
  /** The audit anchors written out of the database; without it the chain is checked on its own. */
  auditAnchorFile?: string | null;
  /** Called between pages, so an activity can heartbeat. */
  progress?: () => void;
}

export interface ReconcileReport extends ReconcileSummary {
  drifts: Drift[];
}

/** The workflow type of a case (workflows/case.ts). */
const CASE_WORKFLOW_TYPE = 'caseWorkflow';
const PAGE = 2000;
/** Rows or workflows that moved within this long are in flight: the next run looks at them. */
const DEFAULT_SETTLE_MS = 5 * 60_000;

interface WorkflowSeen {
  status: WorkflowExecutionStatusName;
  startTime: Date;
  closeTime: Date | null;
}

/** What a case row's status says its workflow should be doing. */
function expectedWorkflowStatus(rowStatus: string): 'RUNNING' | 'COMPLETED' {
  return rowStatus === 'open' || rowStatus === 'opening' ? 'RUNNING' : 'COMPLETED';
}

/**
 * Every case workflow of the namespace, newest run per workflow id, paged through the visibility store
 * (no history is loaded).
 */
async function caseWorkflows(temporal: Client, progress: () => void): Promise<Map<string, WorkflowSeen>> {
  const seen = new Map<string, WorkflowSeen>();
  let n = 0;
  for await (const info of temporal.workflow.list({
    query: `WorkflowType = '${CASE_WORKFLOW_TYPE}'`,
    pageSize: PAGE,
  })) {
    const known = seen.get(info.workflowId);
    const newer =
      !known || info.status.name === 'RUNNING' || (known.status !== 'RUNNING' && info.startTime > known.startTime);
    if (newer) {
      seen.set(info.workflowId, {
        status: info.status.name,
        startTime: info.startTime,
        closeTime: info.closeTime ?? null,
      });
    }
    if (++n % PAGE === 0) progress();
  }
  return seen;
}

/** The status Temporal gives the workflow now (a second look at a suspected drift), or null when it has none. */
async function currentStatus(temporal: Client, workflowId: string): Promise<WorkflowExecutionStatusName | null> {
  try {
    return (await temporal.workflow.getHandle(workflowId).describe()).status.name;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return null;
    throw error;
  }
}

/** How long the namespace keeps a closed workflow; a case that ended before that has no workflow to compare. */
async function retentionMs(temporal: Client): Promise<number> {
  const { config } = await temporal.workflowService.describeNamespace({ namespace: temporal.options.namespace });
  const seconds = Number(config?.workflowExecutionRetentionTtl?.seconds ?? 0);
  return seconds > 0 ? seconds * 1000 : 24 * 3_600_000;
}

/**
 * Compares Temporal with PostgreSQL and answers every drift found: cases (row ↔ workflow, and their states),
 * one open case per client, transfer counts, the audit trail (no duplicate, the chain and its anchor), and the
 * outbox. Reads ids, statuses and counts only.
 */
export async function reconcile(deps: ReconcileDeps, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const { db, temporal } = deps;
  const progress = deps.progress ?? (() => {});
  const now = new Date();
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
  const settled = (at: Date) => now.getTime() - at.getTime() >= settleMs;
  const drifts: Drift[] = [];
  const add = (check: DriftCheck, agencyId: string | null, subject: string, detail: string) =>
    drifts.push({ check, agencyId, subject, detail });

  // Cases: Temporal's side first, then every row against it; what is left has no row.
  const workflows = await caseWorkflows(temporal, progress);
  const caseWorkflowCount = workflows.size;
  const retention = await retentionMs(temporal);
  const openingWindow = options.openingWindowMs ?? STALE_RESERVATION_MS;
  let caseRows = 0;
  const suspects: { row: CaseRowKey; seen: WorkflowSeen | undefined }[] = [];
  for (let after: string | null = null; ;) {
    const rows = await caseRowPage(db, after, PAGE);
    if (rows.length === 0) break;
    caseRows += rows.length;
    for (const row of rows) {
      const seen = workflows.get(row.workflow_id);
      workflows.delete(row.workflow_id);
      if (row.status === 'opening') {
        if (now.getTime() - row.created_at.getTime() > openingWindow)
          add('case_opening_stale', row.agency_id, row.case_id, `opening since ${row.created_at.toISOString()}`);
        continue;
      }
      if (!settled(row.updated_at)) continue;
      if (!seen) {
        // An ended case whose workflow passed the namespace's retention has nothing left to compare.
        const expired = row.status !== 'open' && now.getTime() - row.updated_at.getTime() > retention;
        if (!expired) suspects.push({ row, seen });
      } else if (seen.status !== expectedWorkflowStatus(row.status)) {
        suspects.push({ row, seen });
      }
    }
    after = rows.at(-1)!.case_id;
    progress();
  }
  // A second look at each suspect, from Temporal directly: the visibility store may lag a moment behind.
  for (const { row } of suspects) {
    const status = await currentStatus(temporal, row.workflow_id);
    if (status === null) {
      add('case_row_without_workflow', row.agency_id, row.case_id, `row ${row.status}, no workflow ${row.workflow_id}`);
    } else if (status !== expectedWorkflowStatus(row.status)) {
      add('case_state_mismatch', row.agency_id, row.case_id, `row ${row.status}, workflow ${status}`);
    }
  }
  for (const [workflowId, seen] of workflows) {
    if (!settled(seen.startTime)) continue;
    if (await caseRowByWorkflowId(db, workflowId)) continue;
    const caseId = workflowId.replace(/^case-/, '');
    add(
      'case_workflow_without_row',
      await agencyOfCaseByAudit(db, caseId),
      workflowId,
      `workflow ${seen.status.toLowerCase()}, no case row`,
    );
  }
  progress();

  for (const c of await clientsWithOpenCases(db)) {
    add('client_open_cases', c.agency_id, c.client_id, `${c.n} open cases: ${c.case_ids.join(', ')}`);
  }

  const transfers = await transferCounts(db, new Date(now.getTime() - settleMs));
  for (const t of transfers) {
    const wrong: string[] = [];
    if (t.opened !== t.proposed) wrong.push(`opened ${t.opened} but ${t.proposed} proposals`);
    if (t.proposalsWithoutCase) wrong.push(`${t.proposalsWithoutCase} proposals without a case`);
    if (t.casesWithoutProposal) wrong.push(`${t.casesWithoutProposal} cases without a proposal`);
    if (wrong.length) add('transfer_counts', t.agencyId, t.transferId, `${wrong.join('; ')} (${t.cases} cases)`);
  }

  for (const e of await duplicatedAuditEvents(db)) {
    add('audit_event_duplicated', e.agency_id, e.event_key, `${e.n} events (seq ${e.seqs.join(', ')})`);
  }
  progress();
  // Every run checks what was chained since the last one and the anchors; the run in the 03:00 UTC hour checks
  // every chain from its genesis, and every event accounted for.
  await integrateAuditChains(db);
  const chain = await verifyChain(db, deps.auditAnchorFile ? lastAnchor(deps.auditAnchorFile) : null, {
    full: options.fullAuditVerify ?? now.getUTCHours() === 3,
  });
  if (chain.firstBroken) {
    const { chain: name, position, seq, reason } = chain.firstBroken;
    add(
      'audit_chain_broken',
      name === '' ? null : name,
      `${name || 'service'}:${position}`,
      `entry ${position}${seq ? ` (event ${seq})` : ''}: ${reason}`,
    );
  }
  if (chain.unchained) {
    add('audit_chain_broken', null, 'unchained', `${chain.unchained} events are in no chain and not queued for one`);
  }
  progress();

  const outboxWindow = options.outboxWindowMs ?? outboxRetryWindowMs(DELIVERY_DEFAULTS);
  for (const m of await undeliveredMessages(db, new Date(now.getTime() - outboxWindow))) {
    add(
      'outbox_undelivered',
      m.agency_id,
      m.message_key,
      `${m.kind} ${m.status} since ${m.created_at.toISOString()}, ${m.attempts} attempts`,
    );
  }

  const counts = emptyDriftCounts();
  for (const d of drifts) counts[d.check]++;
  return {
    ok: drifts.length === 0,
    checkedAt: now.toISOString(),
    checked: {
      caseRows,
      caseWorkflows: caseWorkflowCount,
      transfers: transfers.length,
      auditEvents: chain.checked,
    },
    drift: counts,
    drifts,
  };
}

const LISTED = 20;

/**
 * One task per agency and kind of drift (the agency's staff queue), or, for drift no agency owns, one in the
 * operator's (admin) queue. Keyed by what drifts, so the same drift found again raises nothing new.
 */
export function driftTasks(drifts: Drift[]): DriftTaskSpec[] {
  const groups = new Map<string, { agencyId: string | null; check: DriftCheck; subjects: string[] }>();
  for (const d of drifts) {
    const id = `${d.agencyId ?? ''}|${d.check}`;
    const group = groups.get(id) ?? { agencyId: d.agencyId, check: d.check, subjects: [] };
    group.subjects.push(d.subject);
    groups.set(id, group);
  }
  return [...groups.values()]
    .sort((a, b) => DRIFT_CHECKS.indexOf(a.check) - DRIFT_CHECKS.indexOf(b.check))
    .map(({ agencyId, check, subjects }) => {
      const sorted = [...new Set(subjects)].sort();
      const fingerprint = createHash('sha256').update(sorted.join('\n')).digest('hex').slice(0, 16);
      const more = sorted.length > LISTED ? ` and ${sorted.length - LISTED} more` : '';
      return {
        key: `reconcile:${agencyId ?? 'operator'}:${check}:${fingerprint}`,
        agencyId,
        assigneeRole: agencyId ? 'staff' : 'admin',
        detail:
          `reconcile found ${sorted.length} ${DRIFT_LABELS[check]} (${check}): ` +
          `${sorted.slice(0, LISTED).join(', ')}${more}; see \`npm run reconcile\``,
      };
    });
}

/** The reconcile activity the scheduled workflow runs. */
export function createReconcileActivities(deps: { db: Kysely<Database>; temporal?: Client; auditAnchorFile?: string }) {
  return {
    /** Runs every invariant check and keeps the drift tasks in step with what it found; answers counts only. */
    async reconcileAndRaiseTasks(options: ReconcileOptions): Promise<ReconcileSummary> {
      if (!deps.temporal) {
        throw ApplicationFailure.nonRetryable('the reconcile needs a Temporal client', 'Misconfigured');
      }
      const report = await reconcile(
        {
          db: deps.db,
          temporal: deps.temporal,
          auditAnchorFile: deps.auditAnchorFile ?? null,
          progress: () => Context.current().heartbeat(),
        },
        options,
      );
      const tasks = await syncDriftTasks(deps.db, driftTasks(report.drifts), new Date());
      const { drifts: _drifts, ...summary } = report;
      return { ...summary, tasks };
    },
  };
}
