import type { Services } from './services';

/** What the command line asked for; each benchmark reads its own size from it. */
export interface BenchOptions {
  quick: boolean;
  /** CPU profiles of the worker and the API, and PostgreSQL's statement counts (bench/profile.ts). */
  profile: boolean;
  pairs: number;
  only: string[] | null;
  clients?: number;
  cases?: number;
  rate?: number;
  seconds?: number;
  readClients?: number;
  events?: number;
  appends?: number;
}

/** One figure both sides measure; `lower` or `higher` is better. */
export interface FigureSpec {
  key: string;
  label: string;
  unit: string;
  better: 'lower' | 'higher';
}

/** A limit on a figure only the service side has (peak RSS, exactly once): checked on the worst A run. */
export interface LimitSpec {
  key: string;
  label: string;
  /** At most this. */
  max?: number;
  /** Less than this. */
  below?: number;
  equals?: boolean;
}

export interface Goal {
  text: string;
  /** The service's cost over the baseline's, figure by figure (A/B for lower-better, B/A for higher-better). */
  ratios: { key: string; max: number }[];
  limits?: LimitSpec[];
}

/** One run of one side. `failures` are correctness problems (a lost case, a non-2xx read), never timings. */
export interface RunResult {
  figures: Record<string, number>;
  extras?: Record<string, number | boolean>;
  failures?: string[];
}

/**
 * A benchmark: the service's way (A) against its bare baseline (B0, here B), each run on the same servers and
 * interleaved by the runner. `prepare` starts what both sides need and returns their shared state; `finish`
 * stops it.
 */
export interface Benchmark<State = unknown, Size = Record<string, number>> {
  name: string;
  a: string;
  b: string;
  figures: FigureSpec[];
  goal: Goal;
  size(options: BenchOptions): Size;
  warmupSize(size: Size): Size;
  prepare(services: Services, size: Size): Promise<State>;
  runA(state: State, size: Size): Promise<RunResult>;
  runB(state: State, size: Size): Promise<RunResult>;
  finish(state: State): Promise<void>;
  /** Profiling: what one run of the service is made of ("case", 1000), to count statements per unit. */
  unitOf?(size: Size): ProfileUnit;
  /** Profiling: a few units of the service's work, one after another on the quiet service, after the runs. */
  probe?(state: State): Promise<ProfileUnit>;
}

/** So many of one thing (cases opened, reads answered), to divide a count of statements by. */
export interface ProfileUnit {
  name: string;
  count: number;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)! };
}

/** How many times the baseline's cost the service's is: above 1, the service is slower. */
export function ratioOf(figure: FigureSpec, a: number, b: number): number {
  return figure.better === 'lower' ? a / b : b / a;
}

/** Seconds since `start` (a performance.now() reading), to the millisecond. */
export function secondsSince(start: number): number {
  return Math.round(performance.now() - start) / 1000;
}

/** Calls `probe` every `everyMs` until it returns a value; throws `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: { everyMs: number; timeoutMs: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(options.timeoutMs / 1000)} s`);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs));
  }
}
