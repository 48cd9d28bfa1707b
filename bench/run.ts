import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { apiReadBenchmark } from './api-read';
import { auditAppendBenchmark } from './audit-append';
import { auditExportBenchmark } from './audit-export';
import type { BenchOptions, Benchmark, RunResult } from './benchmark';
import { caseLifecycleBenchmark } from './case-lifecycle';
import {
  type BenchmarkProfile,
  type ServerActivity,
  type StatementStat,
  type StatementTable,
  type WaitSamples,
  type Window,
  addActivity,
  addStatements,
  addWaits,
  nowUs,
  profileInProcess,
  profileMarkdown,
  readCpuProfiles,
  writeCpuProfile,
  writeStatements,
} from './profile';
import {
  type BenchmarkReport,
  RESULTS_DIR,
  type Report,
  type Run,
  localVersions,
  machine,
  reportMarkdown,
  summarize,
  writeReport,
} from './report';
import { type Services, startServices } from './services';
import { transferBenchmark } from './transfer';

const BENCHMARKS: Benchmark<any, any>[] = [
  transferBenchmark,
  caseLifecycleBenchmark,
  apiReadBenchmark,
  auditExportBenchmark,
  auditAppendBenchmark,
];

const USAGE = `npm run bench -- [--quick] [--profile] [--only name,…] [--pairs N] [size overrides]
  --quick            one pair after a tiny warm-up, tiny sizes; writes bench/results/quick.* (CI runs this)
  --profile          where the time goes: CPU profiles of the worker, the API and the runner (node --cpu-prof,
                     raw under .data/bench/profile/) and PostgreSQL's statements (pg_stat_statements), per benchmark;
                     writes bench/results/profile.md (profile-quick.md with --quick), not latest.* or quick.*
  --only a,b         only these: ${BENCHMARKS.map((b) => b.name).join(', ')}
                     (with --only, --pairs or a size, the run writes bench/results/chosen.*, never latest.*)
  --pairs N          pairs of runs (service, then baseline) after the warm-up; 5 unless --quick
  --clients N        transfer_10k: clients transferred (10000)
  --cases N          case_lifecycle: cases driven to follow-up (100)
  --rate N           api_read: requests a second (100)
  --seconds N        api_read: seconds of reads per run (30)
  --read-clients N   api_read: clients of the transfer that runs during the reads (2000)
  --events N         audit_export_1m: events exported (1000000)
  --appends N        audit_append: events appended per run (20000)`;

function positive(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a whole number above 0, not ${text}`);
  return n;
}

function parseOptions(argv: string[]): BenchOptions & { help: boolean } {
  const size = { type: 'string' } as const;
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      only: { type: 'string' },
      pairs: size,
      clients: size,
      cases: size,
      rate: size,
      seconds: size,
      'read-clients': size,
      events: size,
      appends: size,
    },
    strict: true,
  });
  const only = values.only ? values.only.split(',').map((name) => name.trim()) : null;
  const unknown = only?.filter((name) => !BENCHMARKS.some((b) => b.name === name)) ?? [];
  if (unknown.length) throw new Error(`no benchmark named ${unknown.join(', ')}`);
  return {
    help: values.help === true,
    quick: values.quick === true,
    profile: values.profile === true,
    only,
    pairs: positive('pairs', values.pairs) ?? (values.quick ? 1 : 5),
    clients: positive('clients', values.clients),
    cases: positive('cases', values.cases),
    rate: positive('rate', values.rate),
    seconds: positive('seconds', values.seconds),
    readClients: positive('read-clients', values['read-clients']),
    events: positive('events', values.events),
    appends: positive('appends', values.appends),
  };
}

function describe(run: RunResult): string {
  const shown = { ...run.figures, ...run.extras };
  return Object.entries(shown)
    .map(([key, v]) => `${key} ${typeof v === 'number' ? +v.toPrecision(4) : v}`)
    .join(', ');
}

/** Runs `run` under the CPU profiler of this process, writes the profile into `dir`, and adds its window. */
async function profiledRun(run: () => Promise<RunResult>, dir: string, windows: Window[]): Promise<RunResult> {
  const { result, profile } = await profileInProcess(async () => {
    const startUs = nowUs();
    try {
      return await run();
    } finally {
      windows.push({ startUs, endUs: nowUs() });
    }
  });
  mkdirSync(dir, { recursive: true });
  writeCpuProfile(join(dir, 'runner.cpuprofile'), profile);
  return result;
}

/**
 * Warm-up (A, then B, not counted), then A B A B …, then the summary; an error ends this benchmark only. With
 * --profile, PostgreSQL's statements are counted run by run (the measured ones, each side on its own), a probe runs
 * after the pairs, and the runner profiles itself during the service's runs.
 */
async function runBenchmark(
  benchmark: Benchmark<any, any>,
  services: Services,
  options: BenchOptions,
  say: (line: string) => void,
): Promise<{ report: BenchmarkReport; profile: BenchmarkProfile | null }> {
  const size = benchmark.size(options);
  const partial: Pick<BenchmarkReport, 'size' | 'warmup' | 'runs' | 'error'> = {
    size,
    warmup: null,
    runs: [],
    error: null,
  };
  const profiling = options.profile ? services.profiling : null;
  const statements = { A: new Map<string, StatementStat>(), B: new Map<string, StatementStat>() };
  const activity: Record<'A' | 'B', ServerActivity | null> = { A: null, B: null };
  const waits: Record<'A' | 'B', WaitSamples | null> = { A: null, B: null };
  let probe: StatementTable | null = null;
  /** The service's measured runs: the CPU profiles are summed over these. */
  const windows: Window[] = [];
  try {
    say(`${benchmark.name}: preparing (${JSON.stringify(size)})`);
    profiling?.at(benchmark.name, 'prepare');
    await services.freshTemporal();
    const state = await benchmark.prepare(services, size);
    try {
      const warm = benchmark.warmupSize(size);
      profiling?.at(benchmark.name, 'warmup');
      const a = await benchmark.runA(state, warm);
      say(`${benchmark.name}: warm-up A: ${describe(a)}`);
      const b = await benchmark.runB(state, warm);
      say(`${benchmark.name}: warm-up B: ${describe(b)}`);
      partial.warmup = { a, b };
      for (let pair = 1; pair <= options.pairs; pair++) {
        for (const side of ['A', 'B'] as const) {
          const phase = `pair${pair}-${side}`;
          profiling?.at(benchmark.name, phase);
          await profiling?.statements.reset();
          const sampler = profiling?.statements.sampleWaits();
          const startedAt = performance.now();
          const run = side === 'A' ? () => benchmark.runA(state, size) : () => benchmark.runB(state, size);
          let result: RunResult;
          try {
            result =
              profiling && side === 'A'
                ? await profiledRun(run, join(profiling.dirOf(benchmark.name), `${phase}-runner`), windows)
                : await run();
          } finally {
            const sampled = await sampler?.stop();
            if (sampled) waits[side] = addWaits(waits[side], sampled);
          }
          if (profiling) {
            addStatements(statements[side], await profiling.statements.read());
            activity[side] = addActivity(activity[side], await profiling.statements.activity());
          }
          const entry: Run = { pair, side, ...result, wallSeconds: Math.round(performance.now() - startedAt) / 1000 };
          partial.runs.push(entry);
          say(`${benchmark.name}: ${pair} ${side}: ${describe(result)}`);
        }
      }
      if (profiling && benchmark.probe) {
        await profiling.statements.reset();
        const unit = await benchmark.probe(state);
        probe = {
          title: `probe: ${unit.count} ${unit.name}s one at a time on the quiet service, after the runs`,
          stats: await profiling.statements.read(),
          unit,
          byCalls: true,
          activity: await profiling.statements.activity(),
        };
        say(`${benchmark.name}: probe: ${unit.count} ${unit.name}s`);
      }
    } finally {
      await benchmark.finish(state);
    }
  } catch (error) {
    partial.error = error instanceof Error ? error.message : String(error);
    say(`${benchmark.name}: failed: ${partial.error}`);
  }
  const report = summarize(benchmark, partial);
  if (!profiling) return { report, profile: null };
  const perRun = benchmark.unitOf?.(size);
  const unit = perRun && { name: perRun.name, count: perRun.count * options.pairs };
  const tables: Record<string, StatementTable | null> = {
    A: {
      title: `the service's runs (A, ${options.pairs} measured)`,
      stats: [...statements.A.values()],
      unit,
      activity: activity.A,
      waits: waits.A,
    },
    B: {
      title: `the baseline's runs (B, ${options.pairs} measured)`,
      stats: [...statements.B.values()],
      activity: activity.B,
      waits: waits.B,
    },
    probe,
  };
  const dir = profiling.dirOf(benchmark.name);
  mkdirSync(dir, { recursive: true });
  for (const [name, table] of Object.entries(tables)) {
    if (table) writeStatements(join(dir, `statements-${name}.json`), table.stats);
  }
  return {
    report,
    profile: {
      name: benchmark.name,
      statements: Object.values(tables).filter((t): t is StatementTable => t !== null),
      cpu: readCpuProfiles(dir, windows),
    },
  };
}

/** The header of bench/results/profile.md: what ran, where, and how to read the tables. */
function profileHeader(report: Report): string[] {
  const m = report.machine;
  return [
    `# Where the time goes: \`npm run bench -- ${report.arguments.join(' ')}\`, ${report.startedAt.slice(0, 10)}`,
    '',
    `${report.startedAt} to ${report.finishedAt}, commit ${report.versions.commit}, on ${m.cpu}, ${m.cores} cores, ` +
      `load average ${m.loadAverageAtStart.join(' / ')} at the start and ${m.loadAverageAtEnd?.join(' / ') ?? '?'} at ` +
      'the end. The figures are rough: the profilers cost time of their own, and a machine with other work running ' +
      'shifts every timing.',
    '',
    "- PostgreSQL: pg_stat_statements (track = all, planning tracked), reset before each measured run; the service's " +
      "runs (A) and the baseline's (B) are counted apart, the warm-up and the benchmark's preparation not at all. " +
      "The runs include the bench's own statements (seeding a caseload, a token, polling a transfer's status). " +
      '"nested" statements ran inside a function or trigger, and their time is in their caller\'s too. A statement\'s ' +
      "time leaves out its commit's WAL flush (counted apart, from pg_stat_wal) and includes any wait for a lock; " +
      "pg_stat_activity, sampled every 100 ms, says what the database's backends were doing. The server's log " +
      '(.data/bench/postgres.log) has the plan of every statement slower than 200 ms and every lock waited on for ' +
      'over a second.',
    '- CPU: V8 profiles (`node --cpu-prof`) of each worker and API thread (the worker runs its workflows on a ' +
      'thread of their own; tsx loads TypeScript on another), written when the process exits. The tables count the ' +
      "samples taken during the service's measured runs, from the moment the process was ready (polling, " +
      "listening), so start-up, warm-up and the baseline's runs are left out; the folder says when the process " +
      "started (`prepare`: it serves every run). `runner` is the bench's own process during those runs. Self time " +
      "by area (a package under node_modules, a folder of the project, Node's core, native code, V8's (garbage " +
      'collector), (program) and (idle)) and by function.',
  ];
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const selected = BENCHMARKS.filter((b) => !options.only || options.only.includes(b.name));
  const say = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  const startedAt = new Date().toISOString();
  const host = machine();
  const services = await startServices(say, { profile: options.profile });
  const stopOnSignal = () => {
    say('stopping');
    void services.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  const reports: BenchmarkReport[] = [];
  const profiles: BenchmarkProfile[] = [];
  let versions: Record<string, string>;
  try {
    for (const benchmark of selected) {
      const { report, profile } = await runBenchmark(benchmark, services, options, say);
      reports.push(report);
      if (profile) profiles.push(profile);
    }
    versions = { ...localVersions(), ...(await services.versions()) };
  } finally {
    await services.stop();
  }
  host.loadAverageAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  const mode = options.quick ? 'quick' : process.argv.length > 2 ? 'chosen' : 'full';
  const report: Report = {
    mode,
    arguments: process.argv.slice(2),
    startedAt,
    finishedAt: new Date().toISOString(),
    pairs: options.pairs,
    machine: host,
    versions,
    benchmarks: reports,
  };
  let files: string[];
  if (options.profile) {
    // Timings taken under the profilers are no one's results: they go with the profile, not into latest.*.
    const file = join(RESULTS_DIR, options.quick ? 'profile-quick.md' : 'profile.md');
    const figures = reportMarkdown(report, selected).replace(/^#/gm, '##');
    writeFileSync(file, profileMarkdown(profileHeader(report), profiles) + `\n${figures}`);
    files = [relative(process.cwd(), file)];
  } else {
    // Only a run with no option is a complete run: one with chosen benchmarks, pairs or sizes writes chosen.*
    // beside latest.* and never replaces it.
    files = writeReport(report, selected, mode === 'full' ? 'latest' : mode);
  }
  for (const b of reports) {
    const verdicts = b.verdicts.map(
      (v) =>
        `${v.what} ${typeof v.value === 'number' ? +v.value.toPrecision(3) : v.value} (${v.goal}) ${v.met ? 'met' : 'missed'}`,
    );
    say(`${b.name}: ${b.error ? `did not finish: ${b.error}` : verdicts.join('; ')}`);
  }
  say(`written: ${files.join(', ')}`);
  // Goals missed are reported, never failed on: timings on a shared machine are not a test. Errors and lost or
  // doubled work are.
  const broken = reports.filter((b) => b.error !== null || b.failures.length > 0);
  for (const b of broken) say(`${b.name}: ${b.error ?? b.failures.join('; ')}`);
  return broken.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
