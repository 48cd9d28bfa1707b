import { randomUUID } from 'node:crypto';
import { type CaseApi, CaseDriver, STAFF, today } from '../tests/support/cases';
import { send, tokenFor } from '../tests/support/stack';
import { bareCaseId } from './baseline/activities';
import { type Benchmark, type RunResult, secondsSince } from './benchmark';
import { inLanes } from './lanes';
import { type ChildService, type Services, stopOnFailure } from './services';
import { activitiesScheduled } from './transfer';

/** A step that waits on the worker gets this long; past it the run has failed. */
const STEP_TIMEOUT_MS = 300_000;

/**
 * One case from its start to follow-up through the API, as tests/case-process.test.ts drives its first case: a
 * relocation transfer, approved, the conversation held, an internal referral sent, accepted, the first appointment
 * scheduled, the letter issued by the case itself.
 */
async function driveToFollowUp(api: CaseApi): Promise<CaseDriver> {
  const c = await CaseDriver.open(api);
  await c.approve();
  await c.converse('accept_proposed');
  const candidate = { providerId: 'clin-7', name: 'Dr. clin-7', external: false, contact: 'clin-7@agency.example' };
  await c.act('referrals', { candidates: [candidate] }, STAFF);
  const sent = await c.until((v) => v.process.referrals[0]?.state === 'sent', STEP_TIMEOUT_MS);
  const referralId: string = sent.process.referrals[0].referralId;
  await c.act(`referrals/${referralId}/response`, { response: 'accepted' }, STAFF);
  await c.act(`referrals/${referralId}/appointment`, { scheduledFor: `${today(5)}T15:00:00Z` }, STAFF);
  await c.until((v) => v.step === 'follow_up', STEP_TIMEOUT_MS);
  return c;
}

interface LifecycleState {
  services: Services;
  worker: ChildService;
  api: ChildService;
  caseApi: CaseApi;
  bareWorker: ChildService;
  bareQueue: string;
  /** Activities a case runs from its start to follow-up, read from the first case's history. */
  activitiesPerCase?: number;
}

interface LifecycleSize {
  cases: number;
  /** Cases driven at once. */
  lanes: number;
}

export const caseLifecycleBenchmark: Benchmark<LifecycleState, LifecycleSize> = {
  name: 'case_lifecycle',
  a: 'cases driven from start to follow-up through the API (tests/support/cases.ts CaseDriver), several at once',
  b: 'as many bare workflows, as many at once, each running as many one-row INSERT activities as a case runs',
  figures: [{ key: 'casesPerSecond', label: 'cases per second', unit: '/s', better: 'higher' }],
  goal: { text: 'ratio ≤ 1.3', ratios: [{ key: 'casesPerSecond', max: 1.3 }] },
  size: (options) => ({ cases: options.cases ?? (options.quick ? 4 : 100), lanes: options.quick ? 2 : 8 }),
  warmupSize: ({ cases, lanes }) => ({ cases: Math.max(lanes, Math.round(cases / 10)), lanes }),

  async prepare(services) {
    const queue = `lifecycle-${randomUUID().slice(0, 8)}`;
    const worker = await services.startWorker(queue);
    const api = await stopOnFailure([worker], () => services.startApi(queue));
    const bareQueue = `bare-${queue}`;
    const bareWorker = await stopOnFailure([worker, api], () => services.startBareWorker(bareQueue));
    const caseApi: CaseApi = {
      client: services.temporal,
      request: async (method, path, options = {}) => {
        const actor = options.actor === undefined ? STAFF : options.actor;
        const token = actor ? await tokenFor(services.db, actor) : null;
        return send(api.url, method, path, { body: options.body, headers: options.headers, token });
      },
    };
    return { services, worker, api, caseApi, bareWorker, bareQueue };
  },

  async runA(state, { cases, lanes }): Promise<RunResult> {
    const startedAt = performance.now();
    let first: CaseDriver | undefined;
    await inLanes(cases, lanes, async () => {
      const driven = await driveToFollowUp(state.caseApi);
      first ??= driven;
    });
    const seconds = secondsSince(startedAt);
    state.activitiesPerCase ??= await activitiesScheduled(state.services.temporal, first!.handle().workflowId);
    return {
      figures: { casesPerSecond: cases / seconds },
      extras: { seconds, activitiesPerCase: state.activitiesPerCase },
    };
  },

  async runB(state, { cases, lanes }): Promise<RunResult> {
    const activities = state.activitiesPerCase;
    if (activities === undefined) throw new Error('the service side runs first, to count activities');
    const tag = randomUUID();
    const startedAt = performance.now();
    await inLanes(cases, lanes, async (index) => {
      await state.services.bareTemporal.workflow.execute('bareCaseWorkflow', {
        workflowId: bareCaseId(tag, index),
        taskQueue: state.bareQueue,
        args: [{ tag, index, activities, wait: false }],
      });
    });
    const seconds = secondsSince(startedAt);
    return { figures: { casesPerSecond: cases / seconds }, extras: { seconds } };
  },

  async finish(state) {
    await Promise.all([state.api.stop(), state.worker.stop(), state.bareWorker.stop()]);
  },

  unitOf: ({ cases }) => ({ name: 'case', count: cases }),
};
