import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import {
  type Benchmark,
  type FigureSpec,
  type LimitSpec,
  type RunResult,
  type Spread,
  ratioOf,
  spread,
} from './benchmark';

export const RESULTS_DIR = resolve(__dirname, 'results');

export interface Run extends RunResult {
  pair: number;
  side: 'A' | 'B';
  /** Wall time of the run as a whole, setup included. */
  wallSeconds: number;
}

export interface Verdict {
  what: string;
  value: number | boolean | null;
  goal: string;
  met: boolean;
}

export interface BenchmarkReport {
  name: string;
  a: string;
  b: string;
  size: Record<string, number>;
  goal: string;
  warmup: { a: RunResult; b: RunResult } | null;
  runs: Run[];
  figures: Record<string, { label: string; unit: string; a: Spread | null; b: Spread | null; ratio: number | null }>;
  verdicts: Verdict[];
  met: boolean;
  failures: string[];
  error: string | null;
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGB: number;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
}

export function machine(): Machine {
  return {
    cpu: cpus()[0]?.model.trim() ?? '?',
    cores: cpus().length,
    memoryGB: Math.round(totalmem() / 1e9),
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

function git(args: string[]): string {
  return spawnSync('git', args, { cwd: resolve(__dirname, '..'), encoding: 'utf8' }).stdout.trim();
}

function packageVersion(name: string): string {
  return (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
}

/** Node, the SDK, autocannon and the commit; the runner adds PostgreSQL's and the temporal CLI's. */
export function localVersions(): Record<string, string> {
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    node: process.version,
    temporalSdk: packageVersion('@temporalio/worker'),
    autocannon: packageVersion('autocannon'),
    commit: `${git(['rev-parse', 'HEAD'])}${dirty ? ' (with uncommitted changes)' : ''}`,
  };
}

function limitVerdict(limit: LimitSpec, aRuns: Run[]): Verdict {
  const values = aRuns.map((run) => run.extras?.[limit.key]).filter((v) => v !== undefined);
  if (limit.equals !== undefined) {
    const met = values.length > 0 && values.every((v) => v === limit.equals);
    return { what: limit.label, value: met ? limit.equals : !limit.equals, goal: String(limit.equals), met };
  }
  const worst = values.length ? Math.max(...values.map(Number)) : null;
  const goal = limit.max !== undefined ? `≤ ${limit.max}` : `< ${limit.below}`;
  const met =
    worst !== null && (limit.max !== undefined ? worst <= limit.max : limit.below !== undefined && worst < limit.below);
  return { what: `${limit.label}, worst run`, value: worst, goal, met };
}

/** Medians, spreads, ratios and whether each goal was met, from the runs of one benchmark. */
export function summarize(
  benchmark: Benchmark<any, any>,
  partial: Pick<BenchmarkReport, 'size' | 'warmup' | 'runs' | 'error'>,
): BenchmarkReport {
  const aRuns = partial.runs.filter((r) => r.side === 'A');
  const bRuns = partial.runs.filter((r) => r.side === 'B');
  const figures: BenchmarkReport['figures'] = {};
  for (const figure of benchmark.figures) {
    const a = aRuns.length ? spread(aRuns.map((r) => r.figures[figure.key]!)) : null;
    const b = bRuns.length ? spread(bRuns.map((r) => r.figures[figure.key]!)) : null;
    const ratio = a && b ? ratioOf(figure, a.median, b.median) : null;
    figures[figure.key] = { label: figure.label, unit: figure.unit, a, b, ratio };
  }
  const verdicts: Verdict[] = [
    ...benchmark.goal.ratios.map(({ key, max }) => {
      const ratio = figures[key]?.ratio ?? null;
      return {
        what: `ratio, ${figures[key]!.label}`,
        value: ratio,
        goal: `≤ ${max}`,
        met: ratio !== null && ratio <= max,
      };
    }),
    ...(benchmark.goal.limits ?? []).map((limit) => limitVerdict(limit, aRuns)),
  ];
  const failures = [...(partial.warmup ? [partial.warmup.a, partial.warmup.b] : []), ...partial.runs].flatMap(
    (run) => run.failures ?? [],
  );
  return {
    name: benchmark.name,
    a: benchmark.a,
    b: benchmark.b,
    goal: benchmark.goal.text,
    ...partial,
    figures,
    verdicts,
    met: partial.error === null && verdicts.every((v) => v.met),
    failures,
  };
}

export interface Report {
  /** full: every benchmark at its own size, five pairs; quick: --quick; chosen: anything else asked for. */
  mode: 'full' | 'quick' | 'chosen';
  /** The command line's arguments, as given. */
  arguments: string[];
  startedAt: string;
  finishedAt: string;
  pairs: number;
  machine: Machine;
  versions: Record<string, string>;
  benchmarks: BenchmarkReport[];
}

const round = (value: number) => (Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3));

function cell(s: Spread | null): string {
  return s ? `${round(s.median)} (${round(s.min)}–${round(s.max)})` : '–';
}

function value(v: number | boolean | null | undefined): string {
  if (v === undefined || v === null) return '–';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return round(v);
}

const TITLES: Record<Report['mode'], string> = {
  full: 'full run',
  quick: 'quick run (tiny sizes, for CI)',
  chosen: 'run at chosen sizes (not a full run)',
};

/** The report as Markdown: the run, the machine, then each benchmark's figures, goals and runs. */
export function reportMarkdown(report: Report, benchmarks: Benchmark<any, any>[]): string {
  const figureSpecs = new Map<string, FigureSpec[]>(benchmarks.map((b) => [b.name, b.figures]));
  const m = report.machine;
  const v = report.versions;
  const lines = [
    `# Benchmarks: ${TITLES[report.mode]}, ${report.startedAt.slice(0, 10)}`,
    '',
    `\`npm run bench${report.arguments.length ? ` -- ${report.arguments.join(' ')}` : ''}\`, ${report.startedAt} to ` +
      `${report.finishedAt}: each ` +
      `benchmark as a warm-up, then ${report.pairs} pair${report.pairs === 1 ? '' : 's'} of runs, the service (A) then ` +
      'its bare baseline (B), on the same servers. A figure is the median of its runs, with their min–max; a ratio is ' +
      "the service's cost over the baseline's (above 1, the service is slower).",
    '',
    `- machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB; load average ${m.loadAverageAtStart.join(' / ')} at ` +
      `the start, ${m.loadAverageAtEnd?.join(' / ') ?? '?'} at the end`,
    `- versions: Node ${v.node}, PostgreSQL ${v.postgres ?? '?'}, ${v.temporalCli ?? 'temporal CLI ?'}, ` +
      `@temporalio SDK ${v.temporalSdk}, autocannon ${v.autocannon}`,
    `- commit: ${v.commit}`,
  ];
  for (const b of report.benchmarks) {
    lines.push('', `## ${b.name}: ${b.error ? 'did not finish' : b.met ? 'goal met' : 'goal missed'}`, '');
    lines.push(`- A: ${b.a}`, `- B: ${b.b}`);
    lines.push(
      `- size: ${Object.entries(b.size)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}; goal: ${b.goal}`,
    );
    if (b.error) lines.push(`- error: ${b.error}`);
    for (const failure of b.failures) lines.push(`- failure: ${failure}`);
    lines.push('', '| figure | A | B | ratio |', '| --- | ---: | ---: | ---: |');
    for (const f of Object.values(b.figures)) {
      lines.push(`| ${f.label} (${f.unit}) | ${cell(f.a)} | ${cell(f.b)} | ${value(f.ratio)} |`);
    }
    lines.push('', '| goal | value | wanted | |', '| --- | ---: | ---: | --- |');
    for (const verdict of b.verdicts) {
      lines.push(`| ${verdict.what} | ${value(verdict.value)} | ${verdict.goal} | ${verdict.met ? 'met' : 'missed'} |`);
    }
    const runs = [
      ...(b.warmup
        ? [
            { ...b.warmup.a, pair: 0, side: 'A', wallSeconds: NaN },
            { ...b.warmup.b, pair: 0, side: 'B', wallSeconds: NaN },
          ]
        : []),
      ...b.runs,
    ];
    if (runs.length === 0) continue;
    const figureKeys = (figureSpecs.get(b.name) ?? []).map((f) => f.key);
    const extraKeys = [...new Set(runs.flatMap((r) => Object.keys(r.extras ?? {})))];
    lines.push('', `| run | ${[...figureKeys, ...extraKeys].join(' | ')} |`);
    lines.push(`| --- | ${[...figureKeys, ...extraKeys].map(() => '---:').join(' | ')} |`);
    for (const run of runs) {
      const name = run.pair === 0 ? `warm-up ${run.side}` : `${run.pair} ${run.side}`;
      const cells = [...figureKeys.map((k) => value(run.figures[k])), ...extraKeys.map((k) => value(run.extras?.[k]))];
      lines.push(`| ${name} | ${cells.join(' | ')} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Writes `<name>.json` and `<name>.md` under bench/results/; returns their paths. */
export function writeReport(report: Report, benchmarks: Benchmark<any, any>[], name: string): string[] {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = join(RESULTS_DIR, `${name}.json`);
  const md = join(RESULTS_DIR, `${name}.md`);
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(md, reportMarkdown(report, benchmarks));
  return [json, md];
}
