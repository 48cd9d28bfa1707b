import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { bundleWorkflowCode } from '@temporalio/worker';

/**
 * `npm run release:freeze -- <release> [--checkout <dir>]`: keeps the workflow code of a release as a bundle, so
 * tests/upgrade.test.ts can start cases on it and finish them on the code of today. Run it when a release ships
 * (from its checkout), together with `npm run histories:record -- <release>`. It replaces the previous frozen
 * release: older releases stay covered by their recorded histories, which are never replaced.
 */
async function main(): Promise<void> {
  const [release, ...rest] = process.argv.slice(2);
  if (!release || !/^[A-Za-z0-9._-]+$/.test(release)) {
    process.stderr.write('usage: npm run release:freeze -- <release> [--checkout <dir>]\n');
    process.exit(64);
  }
  const at = rest.indexOf('--checkout');
  const checkout = resolve(at >= 0 && rest[at + 1] ? rest[at + 1]! : '.');
  const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: checkout, encoding: 'utf8' }).trim();
  const bundle = await bundleWorkflowCode({ workflowsPath: join(checkout, 'workflows', 'index.ts') });
  const dir = resolve(__dirname, '..', 'tests', 'releases');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'previous.workflow-bundle.js.gz'), gzipSync(bundle.code, { level: 9 }));
  writeFileSync(join(dir, 'previous.json'), `${JSON.stringify({ release, commit }, null, 2)}\n`);
  process.stdout.write(`froze the workflow code of ${release} (${commit.slice(0, 12)}) in tests/releases/\n`);
}

void main();
