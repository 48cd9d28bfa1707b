import { rm, stat, writeFile } from 'node:fs/promises';

/** How often a worker touches its health file, and how old the file may be before the worker counts as down. */
export const WORKER_BEAT_MS = 10_000;
export const WORKER_STALE_MS = 3 * WORKER_BEAT_MS;

/**
 * The worker's side of its health check (it has no HTTP port): every beat, while it polls and its database answers,
 * it rewrites the file. A hung event loop, a worker that stopped polling or a lost database all leave it to age.
 */
export function beatWorkerHealth(
  file: string,
  alive: () => Promise<boolean>,
  onError: (error: Error) => void,
): { stop: () => Promise<void> } {
  const beat = async () => {
    if (await alive()) await writeFile(file, `${new Date().toISOString()}\n`);
  };
  // A file left by an earlier run of this container says nothing about this one.
  const first = rm(file, { force: true })
    .then(beat)
    .catch((error: unknown) => onError(error as Error));
  const timer = setInterval(() => {
    beat().catch((error: unknown) => onError(error as Error));
  }, WORKER_BEAT_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await first;
      await rm(file, { force: true });
    },
  };
}

/** The health check's verdict on a worker: its file was rewritten within WORKER_STALE_MS, or why not. */
export async function workerHealth(file: string, now = Date.now()): Promise<{ ok: boolean; detail: string }> {
  const modified = await stat(file).then(
    (s) => s.mtimeMs,
    () => null,
  );
  if (modified === null) return { ok: false, detail: `no health file at ${file} yet` };
  const age = now - modified;
  return age <= WORKER_STALE_MS
    ? { ok: true, detail: `beat ${Math.round(age / 1000)} s ago` }
    : { ok: false, detail: `last beat ${Math.round(age / 1000)} s ago (stale after ${WORKER_STALE_MS / 1000} s)` };
}

/** The health check's verdict on an API: GET /health answers 200 within five seconds. */
export async function apiHealth(url: string): Promise<{ ok: boolean; detail: string }> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
    return { ok: response.ok, detail: `GET /health: ${response.status} ${await response.text()}` };
  } catch (error) {
    return { ok: false, detail: `GET /health: ${(error as Error).message}` };
  }
}
