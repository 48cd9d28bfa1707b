import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { sql } from 'kysely';
import type { Db } from '../db/database';
import { today } from '../tests/support/cases';
import { seedCaseload } from '../tests/support/caseload';
import { send, tokenFor } from '../tests/support/stack';
import type { Benchmark, RunResult } from './benchmark';
import { secondsSince, waitFor } from './benchmark';
import { type ChildService, type Services, stopAfter, stopOnFailure } from './services';

/** The search-attribute query that finds every case of a transfer (bare cases carry the same key). */
const ofTransfer = (transferId: string) => `TransferId = "${transferId}"`;
const atReview = (transferId: string) => `${ofTransfer(transferId)} AND CaseStep = "decision_review"`;

/** Long enough for a transfer of `clients` on a slow, shared machine; a run that takes longer has failed. */
const timeoutFor = (clients: number) => ({ everyMs: 250, timeoutMs: 300_000 + clients * 200 });

export interface StartedTransfer {
  transferId: string;
  clients: number;
  /** performance.now() just before the POST. */
  startedAt: number;
}

/** A fresh caseload of `clients` in an agency of its own, and its transfer started through the API as its staff. */
export async function startTransfer(db: Db, api: ChildService, clients: number): Promise<StartedTransfer> {
  const seed = await seedCaseload(db, { clients, receivers: [{ capacity: clients }, { capacity: clients }] });
  const token = await tokenFor(db, { id: 'bench-staff', role: 'staff', agencyId: seed.agencyId });
  const startedAt = performance.now();
  const res = await send<{ transferId: string }>(api.url, 'POST', '/v1/transfers', {
    token,
    body: { counselorId: seed.counselorId, lastDay: today(60) },
  });
  if (res.status !== 202) throw new Error(`POST /v1/transfers: ${res.status} ${JSON.stringify(res.body)}`);
  return { transferId: res.body.transferId, clients, startedAt };
}

/** Until the transfer has started every case (its record says `open`): seconds since the POST. */
export async function untilStarted(db: Db, transfer: StartedTransfer): Promise<number> {
  await waitFor(
    `transfer ${transfer.transferId}: every case started`,
    async () => {
      const row = await db
        .selectFrom('transfers')
        .select('status')
        .where('transfer_id', '=', transfer.transferId)
        .executeTakeFirst();
      if (row?.status === 'failed') throw new Error(`transfer ${transfer.transferId} failed`);
      return row?.status === 'open' ? true : undefined;
    },
    timeoutFor(transfer.clients),
  );
  return secondsSince(transfer.startedAt);
}

/** Until `count` cases of a transfer (or bare cases of a tag) wait at decision review, by Temporal's visibility. */
async function untilAtReview(temporal: Client, tag: string, count: number, startedAt: number): Promise<number> {
  await waitFor(
    `${tag}: every case at decision review`,
    async () => ((await temporal.workflow.count(atReview(tag))).count >= count ? true : undefined),
    timeoutFor(count),
  );
  return secondsSince(startedAt);
}

/** Each client of the transfer has one case row, one workflow and one `case.opened` event: none lost, none twice. */
async function exactlyOnce(services: Services, transferId: string, clients: number) {
  const { rows } = await sql<{ rows: string; clients: string; opening: string; opened_events: string }>`
    select count(*) as rows, count(distinct c.client_id) as clients,
           count(*) filter (where c.status = 'opening') as opening,
           (select count(*) from audit_events a join cases o on o.case_id = a.case_id
             where o.transfer_id = ${transferId} and a.action = 'case.opened') as opened_events
      from cases c where c.transfer_id = ${transferId}`.execute(services.db);
  const found = rows[0]!;
  const workflows = (await services.temporal.workflow.count(ofTransfer(transferId))).count;
  const counts = {
    caseRows: Number(found.rows),
    distinctClients: Number(found.clients),
    stillOpening: Number(found.opening),
    workflows,
    caseOpenedEvents: Number(found.opened_events),
  };
  const ok =
    counts.caseRows === clients &&
    counts.distinctClients === clients &&
    counts.stillOpening === 0 &&
    counts.workflows === clients &&
    counts.caseOpenedEvents === clients;
  return { ok, counts };
}

/**
 * How many activities a workflow has scheduled so far, from its history: every run of it, since a case goes on in
 * a fresh run (continue-as-new) at follow-up.
 */
export async function activitiesScheduled(temporal: Client, workflowId: string): Promise<number> {
  let total = 0;
  let runId: string | undefined;
  for (;;) {
    const events = (await temporal.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
    total += events.filter((event) => event.activityTaskScheduledEventAttributes).length;
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
    if (!runId) return total;
  }
}

interface TransferState {
  services: Services;
  /** Activities a case runs up to decision review, read from a case's history in the first run. */
  activitiesPerCase?: number;
}

interface TransferSize {
  clients: number;
}

/** The bare side, started as the service's transfer starts its cases: a workflow, in pages of 200, 16 at a time. */
const PAGE_SIZE = 200;

export const transferBenchmark: Benchmark<TransferState, TransferSize> = {
  name: 'transfer_10k',
  a: 'a caseload transfer through the API (POST /v1/transfers), the worker and the API as processes of their own',
  b:
    `a bare transfer workflow starting as many bare workflows in pages of ${PAGE_SIZE}, 16 at a time, each ` +
    'running as many one-row INSERT activities as a case runs up to decision review, then waiting',
  figures: [
    { key: 'startedSeconds', label: 'until every case has started', unit: 's', better: 'lower' },
    { key: 'atReviewSeconds', label: 'until every case waits at decision review', unit: 's', better: 'lower' },
  ],
  goal: {
    text: 'ratio ≤ 1.3, every case exactly once, peak worker RSS ≤ 400 MB',
    ratios: [
      { key: 'startedSeconds', max: 1.3 },
      { key: 'atReviewSeconds', max: 1.3 },
    ],
    limits: [
      { key: 'exactlyOnce', label: 'every case exactly once', equals: true },
      { key: 'peakWorkerRssMB', label: 'peak worker RSS (MB)', max: 400 },
    ],
  },
  size: (options) => ({ clients: options.clients ?? (options.quick ? 100 : 10_000) }),
  warmupSize: ({ clients }) => ({ clients: Math.max(20, Math.round(clients / 20)) }),

  prepare: async (services) => ({ services }),

  // Each run has a Temporal server, a worker and a task queue of its own: its figures are this transfer's, not
  // those of the cache, or of the workflows, left by the runs before it.
  async runA(state, { clients }): Promise<RunResult> {
    const { services } = state;
    await services.freshTemporal();
    const queue = `transfer-${randomUUID().slice(0, 8)}`;
    const worker = await services.startWorker(queue);
    const api = await stopOnFailure([worker], () => services.startApi(queue));
    const { transfer, startedSeconds, atReviewSeconds, peakMB } = await stopAfter([api, worker], async () => {
      const rss = worker.watchRss();
      const started = await startTransfer(services.db, api, clients);
      return {
        transfer: started,
        startedSeconds: await untilStarted(services.db, started),
        atReviewSeconds: await untilAtReview(services.temporal, started.transferId, clients, started.startedAt),
        peakMB: rss.stop().peakMB,
      };
    });
    const once = await exactlyOnce(services, transfer.transferId, clients);
    if (state.activitiesPerCase === undefined) {
      const one = await services.db
        .selectFrom('cases')
        .select('workflow_id')
        .where('transfer_id', '=', transfer.transferId)
        .executeTakeFirstOrThrow();
      state.activitiesPerCase = await activitiesScheduled(services.temporal, one.workflow_id);
    }
    return {
      figures: { startedSeconds, atReviewSeconds },
      extras: {
        exactlyOnce: once.ok,
        peakWorkerRssMB: peakMB,
        ...once.counts,
        activitiesPerCase: state.activitiesPerCase,
      },
      failures: once.ok ? [] : [`transfer ${transfer.transferId}: not every case exactly once`],
    };
  },

  async runB(state, { clients }): Promise<RunResult> {
    const { services } = state;
    if (state.activitiesPerCase === undefined) throw new Error('the service side runs first, to count activities');
    await services.freshTemporal();
    const tag = `bare-${randomUUID()}`;
    const worker = await services.startBareWorker(tag);
    return stopAfter([worker], async () => {
      const rss = worker.watchRss();
      const startedAt = performance.now();
      const handle = await services.bareTemporal.workflow.start('bareTransferWorkflow', {
        workflowId: `transfer-${tag}`,
        taskQueue: tag,
        args: [{ tag, count: clients, pageSize: PAGE_SIZE, activities: state.activitiesPerCase }],
      });
      await waitFor(
        `${tag}: every bare case started`,
        async () => {
          const { status } = await handle.describe();
          if (status.name === 'FAILED' || status.name === 'TERMINATED') throw new Error(`${tag}: ${status.name}`);
          return status.name === 'COMPLETED' ? true : undefined;
        },
        timeoutFor(clients),
      );
      const startedSeconds = secondsSince(startedAt);
      const atReviewSeconds = await untilAtReview(services.bareTemporal, tag, clients, startedAt);
      const { peakMB } = rss.stop();
      return { figures: { startedSeconds, atReviewSeconds }, extras: { peakWorkerRssMB: peakMB } };
    });
  },

  finish: async () => {},
  unitOf: ({ clients }) => ({ name: 'case', count: clients }),
};
