import { loadConfig } from '../config';
import { apiHealth, workerHealth } from '../health';
import { runCli } from './cli';

const USAGE = 'usage: node dist/scripts/healthcheck.js api|worker';

/**
 * The container health check (the image's HEALTHCHECK, compose's for the worker): exit 0 when healthy. The API
 * is asked GET /health on its own port; the worker, which listens on none, is judged by its health file's age.
 */
async function main([what]: string[]): Promise<number> {
  const config = loadConfig();
  let verdict: { ok: boolean; detail: string };
  if (what === 'api') {
    const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
    verdict = await apiHealth(`http://${host.includes(':') ? `[${host}]` : host}:${config.PORT}`);
  } else if (what === 'worker') {
    if (!config.WORKER_HEALTH_FILE) throw new Error('WORKER_HEALTH_FILE is unset: the worker writes no health file');
    verdict = await workerHealth(config.WORKER_HEALTH_FILE);
  } else {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  process.stdout.write(`${what}: ${verdict.ok ? 'healthy' : 'unhealthy'}: ${verdict.detail}\n`);
  return verdict.ok ? 0 : 1;
}

runCli('healthcheck', main);
