import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { apiReadBenchmark } from './api-read';
import { auditAppendBenchmark } from './audit-append';
import { auditExportBenchmark } from './audit-export';
import type { BenchOptions, Benchmark, RunResult } from './benchmark';
import { caseLifecycleBenchmark } from './case-lifecycle';
import { type BenchmarkReport, type Report, type Run, localVersions, machine, summarize, writeReport } from './report';
import { type Services, startServices } from './services';
import { transferBenchmark } from './transfer';

const BENCHMARKS: Benchmark<any, any>[] = [
  transferBenchmark,
  caseLifecycleBenchmark,
  apiReadBenchmark,
  auditExportBenchmark,
  auditAppendBenchmark,
];

const USAGE = `npm run bench -- [--quick] [--only name,…] [--pairs N] [size overrides]
  --quick            one pair after a tiny warm-up, tiny sizes; writes bench/results/quick.* (CI runs this)
  --only a,b         only these: ${BENCHMARKS.map((b) => b.name).join(', ')}
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

/** Warm-up (A, then B, not counted), then A B A B …, then the summary; an error ends this benchmark only. */
async function runBenchmark(
  benchmark: Benchmark<any, any>,
  services: Services,
  options: BenchOptions,
  say: (line: string) => void,
): Promise<BenchmarkReport> {
  const size = benchmark.size(options);
  const partial: Pick<BenchmarkReport, 'size' | 'warmup' | 'runs' | 'error'> = {
    size,
    warmup: null,
    runs: [],
    error: null,
  };
  try {
    say(`${benchmark.name}: preparing (${JSON.stringify(size)})`);
    const state = await benchmark.prepare(services, size);
    try {
      const warm = benchmark.warmupSize(size);
      const a = await benchmark.runA(state, warm);
      say(`${benchmark.name}: warm-up A: ${describe(a)}`);
      const b = await benchmark.runB(state, warm);
      say(`${benchmark.name}: warm-up B: ${describe(b)}`);
      partial.warmup = { a, b };
      for (let pair = 1; pair <= options.pairs; pair++) {
        for (const side of ['A', 'B'] as const) {
          const startedAt = performance.now();
          const result = await (side === 'A' ? benchmark.runA(state, size) : benchmark.runB(state, size));
          const run: Run = { pair, side, ...result, wallSeconds: Math.round(performance.now() - startedAt) / 1000 };
          partial.runs.push(run);
          say(`${benchmark.name}: ${pair} ${side}: ${describe(result)}`);
        }
      }
    } finally {
      await benchmark.finish(state);
    }
  } catch (error) {
    partial.error = error instanceof Error ? error.message : String(error);
    say(`${benchmark.name}: failed: ${partial.error}`);
  }
  return summarize(benchmark, partial);
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
  const services = await startServices(say);
  const stopOnSignal = () => {
    say('stopping');
    void services.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  const reports: BenchmarkReport[] = [];
  let versions: Record<string, string>;
  try {
    for (const benchmark of selected) reports.push(await runBenchmark(benchmark, services, options, say));
    versions = { ...localVersions(), ...(await services.versions()) };
  } finally {
    await services.stop();
  }
  host.loadAverageAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  const report: Report = {
    mode: options.quick ? 'quick' : process.argv.length > 2 ? 'chosen' : 'full',
    arguments: process.argv.slice(2),
    startedAt,
    finishedAt: new Date().toISOString(),
    pairs: options.pairs,
    machine: host,
    versions,
    benchmarks: reports,
  };
  const files = writeReport(report, selected, options.quick ? 'quick' : 'latest');
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
