import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Logger, bundleWorkflowCode } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../codec';
import { runCli } from './cli';

/**
 * The worker's workflow code, bundled ahead of time (the image does it at build): a worker whose WORKFLOW_BUNDLE
 * points at the file starts without running webpack.
 */
export async function bundleWorkflows(outFile: string, logger?: Logger): Promise<{ path: string; bytes: number }> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    // As the worker bundles at start: failure messages inside workflows go into payloads the codec seals.
    failureConverterPath: FAILURE_CONVERTER_PATH,
    ...(logger ? { logger } : {}),
  });
  mkdirSync(dirname(resolve(outFile)), { recursive: true });
  writeFileSync(outFile, code);
  return { path: resolve(outFile), bytes: Buffer.byteLength(code) };
}

if (require.main === module) {
  runCli('bundle-workflows', async ([outFile]) => {
    if (!outFile) {
      process.stderr.write('usage: bundle-workflows <out.js>\n');
      return 2;
    }
    const bundle = await bundleWorkflows(outFile);
    process.stdout.write(`workflow bundle: ${bundle.path} (${Math.round(bundle.bytes / 1024)} kB)\n`);
    return 0;
  });
}
