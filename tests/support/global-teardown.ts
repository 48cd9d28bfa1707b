/** Stops what the global setup started, last started first. */
export default async function globalTeardown(): Promise<void> {
  const stops = globalThis.__handoffTestStops ?? [];
  for (const stop of [...stops].reverse()) await stop();
}
