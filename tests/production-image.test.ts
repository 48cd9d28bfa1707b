import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import ts from 'typescript';
import { parse as parseYaml } from 'yaml';
import { webDirFor } from '../api/web';
import { loadConfig, requireConnections } from '../config';
import { workerHealth } from '../health';
import { openTemporalClient } from '../temporal';
import { bundleWorkflows } from '../scripts/bundle-workflows';
import { startWorker } from '../worker/main';
import { testContext } from './support/context';
import { testDataConverter } from './support/payload-keys';
import { isolatedServices } from './support/isolated';
import { eventually, withApp } from './support/stack';

const ROOT = resolve(__dirname, '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const run = promisify(execFile);

interface Stage {
  from: string;
  instructions: { op: string; args: string }[];
}

/** The Dockerfile's stages, with line continuations joined and ARG defaults put into FROM. */
function dockerStages(): Stage[] {
  const lines = read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', rest = ''] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    if (op === 'ARG' && stages.length === 0) {
      const [name, value = ''] = rest.split('=');
      args.set(name!, value);
    } else if (op === 'FROM') {
      const image = rest.split(/\s+/)[0]!.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? '');
      stages.push({ from: image, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ op, args: rest.replace(/\s+/g, ' ') });
    }
  }
  return stages;
}

/** The compiled entry points the image and the stack run (node dist/…js), and the README tells operators to. */
function entryPoints(): string[] {
  const text = ['Dockerfile', 'docker-compose.yml', 'README.md'].map(read).join('\n');
  const found = new Set([...text.matchAll(/\bdist\/([\w/-]+)\.js\b/g)].map((m) => `${m[1]}.ts`));
  return [...found].filter((source) => existsSync(join(ROOT, source))).sort();
}

/**
 * The packages the compiled code requires from these entry points: each source transpiled as the build does
 * (type-only imports drop out), its requires followed through the project's own files.
 */
function requiredPackages(entries: string[]): Map<string, string> {
  const packages = new Map<string, string>();
  const seen = new Set<string>();
  const queue = entries.map((e) => join(ROOT, e));
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: file,
    }).outputText;
    // A dynamic import() (openid-client, ESM-only, loaded only when OIDC is configured) counts as a require.
    for (const [, , spec] of js.matchAll(/\b(?:require|import)\((["'])([^"']+)\1\)/g)) {
      if (spec!.startsWith('.')) {
        const base = resolve(dirname(file), spec!);
        const source = [`${base}.ts`, join(base, 'index.ts')].find(existsSync);
        if (!source) throw new Error(`${file} requires ${spec}, which has no source`);
        queue.push(source);
      } else if (!isBuiltin(spec!)) {
        const name = spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]!;
        packages.set(name, packages.get(name) ?? file.slice(ROOT.length + 1));
      }
    }
  }
  return packages;
}

describe('the image', () => {
  const stages = dockerStages();
  const final = stages.at(-1)!;
  const finalOps = (op: string) => final.instructions.filter((i) => i.op === op).map((i) => i.args);

  test('when the Dockerfile is read, then every stage is on a Node LTS line no older than 24, slim', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      const [, major] = /^node:(\d+)-bookworm-slim$/.exec(stage.from) ?? [];
      expect(Number(major)).toBeGreaterThanOrEqual(24);
      // Even majors are the LTS lines.
      expect(Number(major) % 2).toBe(0);
    }
  });

  test('when the image runs, then it is as a non-root user, with a health check on the API’s /health', () => {
    const user = finalOps('USER').at(-1);
    expect(user).toBeDefined();
    expect(user!.split(':')[0]).not.toMatch(/^(root|0)$/);
    const healthcheck = finalOps('HEALTHCHECK');
    expect(healthcheck).toHaveLength(1);
    expect(healthcheck[0]).toContain('CMD ["node", "dist/scripts/healthcheck.js", "api"]');
    expect(finalOps('CMD')).toEqual(['["node", "dist/api/main.js"]']);
  });

  test('when the image is built, then it carries the production dependencies only, a prebuilt workflow bundle and the staff page', () => {
    const build = stages.slice(0, -1).flatMap((s) => s.instructions);
    const runs = build.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.join('\n')).toContain('npm prune --omit=dev');
    expect(runs.join('\n')).toContain('node dist/scripts/bundle-workflows.js dist/workflow-bundle.js');
    const env = finalOps('ENV').join(' ');
    expect(env).toContain('NODE_ENV=production');
    expect(env).toContain('WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js');
    expect(env).toMatch(/WORKER_HEALTH_FILE=\S+/);
    expect(finalOps('WORKDIR')).toEqual(['/app']);
    const copies = finalOps('COPY');
    for (const dir of ['node_modules', 'dist', 'web']) expect(copies).toContain(`--from=build /app/${dir} ./${dir}`);
    const ignored = read('.dockerignore').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.env', '.env.*', '.git']));
  });

  test('when the compiled code runs, then every package it requires is a production dependency, and every production dependency is required', () => {
    const entries = entryPoints();
    expect(entries).toEqual(
      expect.arrayContaining(['api/main.ts', 'worker/main.ts', 'db/migrate.ts', 'scripts/healthcheck.ts']),
    );
    const required = requiredPackages(entries);
    const manifest = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean }> };
    // What `npm ci --omit=dev` leaves out is what the lockfile marks dev.
    const devOnly = [...required]
      .filter(([name]) => !lock.packages[`node_modules/${name}`] || lock.packages[`node_modules/${name}`]!.dev)
      .map(([name, by]) => `${name} (required by ${by})`);
    expect(devOnly).toEqual([]);
    expect([...required.keys()].filter((name) => !(name in manifest.dependencies))).toEqual([]);
    expect(Object.keys(manifest.dependencies).filter((name) => !required.has(name))).toEqual([]);
  });
});

describe('the compiled layout', () => {
  test('when the API runs compiled from dist/, then it finds the staff page in web/ beside package.json, as from source', () => {
    expect(webDirFor('/app/dist/api')).toBe('/app/web');
    expect(webDirFor(join(ROOT, 'api'))).toBe(join(ROOT, 'web'));
    expect(existsSync(join(webDirFor(join(ROOT, 'api')), 'index.html'))).toBe(true);
  });
});

describe('the compose stack', () => {
  const text = read('docker-compose.yml');
  const compose = parseYaml(text, { merge: true }) as {
    services: Record<
      string,
      { image?: string; command?: string[]; healthcheck?: { test?: string[]; disable?: boolean } }
    >;
  };

  test('when the stack starts, then the API and the worker each have a health check of their own', () => {
    const { api, worker, migrate } = compose.services;
    expect(api!.healthcheck!.test).toEqual(['CMD', 'node', 'dist/scripts/healthcheck.js', 'api']);
    expect(worker!.healthcheck!.test).toEqual(['CMD', 'node', 'dist/scripts/healthcheck.js', 'worker']);
    expect(migrate!.healthcheck!.disable).toBe(true);
  });

  test('when a secret is not given, then the stack refuses to start, and .env stays out of git', async () => {
    for (const secret of ['POSTGRES_PASSWORD', 'HANDOFF_OWNER_PASSWORD', 'HANDOFF_DB_PASSWORD']) {
      const uses = [...text.matchAll(new RegExp(`\\$\\{${secret}([^}]*)\\}`, 'g'))].map((m) => m[1]);
      expect(uses.length).toBeGreaterThan(0);
      for (const use of uses) expect(use).toMatch(/^:\?/);
    }
    const ignored = await run('git', ['check-ignore', '.env', '.env.production'], { cwd: ROOT });
    expect(ignored.stdout.trim().split('\n')).toEqual(['.env', '.env.production']);
  });
});

describe('the prebuilt workflow bundle', () => {
  test('when the bundle script has run, then a worker starts from its bundle, runs workflows and keeps its health file fresh', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'handoff-image-'));
    const bundle = await bundleWorkflows(join(dir, 'workflow-bundle.js'), {
      trace() {},
      debug() {},
      info() {},
      warn() {},
      error() {},
      log() {},
    });
    expect(bundle.bytes).toBeGreaterThan(100_000);
    const services = await isolatedServices('image');
    const healthFile = join(dir, 'worker.alive');
    const taskQueue = `image-${randomUUID()}`;
    const config = loadConfig({
      DATABASE_URL: services.databaseUrl,
      TEMPORAL_ADDRESS: testContext().temporalAddress,
      TEMPORAL_NAMESPACE: services.namespace,
      TEMPORAL_TASK_QUEUE: taskQueue,
      WORKFLOW_BUNDLE: bundle.path,
      WORKER_HEALTH_FILE: healthFile,
      DATA_DIR: dir,
      LOG_LEVEL: 'silent',
    });
    const temporal = openTemporalClient({ address: testContext().temporalAddress }, services.namespace, {
      dataConverter: testDataConverter(),
    });
    const worker = await startWorker(requireConnections(config), pino({ level: 'silent' }));
    try {
      // The outbox sender the worker starts is workflow code: a completed workflow task means the bundle ran.
      await eventually(async () => {
        const history = await temporal.client.workflow.getHandle(`outbox-sender-${taskQueue}`).fetchHistory();
        return (history.events ?? []).some((e) => e.workflowTaskCompletedEventAttributes);
      }, 30_000);
      await eventually(async () => (await workerHealth(healthFile)).ok, 15_000);
      const check = await run(process.execPath, ['--import', 'tsx', 'scripts/healthcheck.ts', 'worker'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, WORKER_HEALTH_FILE: healthFile },
      });
      expect(check.stdout).toMatch(/^worker: healthy: beat \d+ s ago/);
    } finally {
      await worker.stop();
      await temporal.client.workflow
        .getHandle(`outbox-sender-${taskQueue}`)
        .terminate('test over')
        .catch(() => {});
      await temporal.client.schedule
        .getHandle(`reconcile-${taskQueue}`)
        .delete()
        .catch(() => {});
      await temporal.close();
      await services.drop();
    }
    // A stopped worker leaves no file behind that could pass for a live one.
    expect(await workerHealth(healthFile)).toEqual({ ok: false, detail: `no health file at ${healthFile} yet` });
    await expect(
      run(process.execPath, ['--import', 'tsx', 'scripts/healthcheck.ts', 'worker'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, WORKER_HEALTH_FILE: healthFile },
      }),
    ).rejects.toMatchObject({ code: 1 });
  });

  test('when the API answers /health, then the image’s health check passes; with nothing listening, it fails', async () => {
    await withApp({}, async (url) => {
      const { port } = new URL(url);
      const check = await run(process.execPath, ['--import', 'tsx', 'scripts/healthcheck.ts', 'api'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOST: '0.0.0.0', PORT: port },
      });
      expect(check.stdout).toMatch(/^api: healthy: GET \/health: 200/);
    });
    await expect(
      run(process.execPath, ['--import', 'tsx', 'scripts/healthcheck.ts', 'api'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '1' },
      }),
    ).rejects.toMatchObject({ code: 1 });
  });
});
