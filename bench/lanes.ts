/** Runs `lanes` loops at once, each taking the next index until `count` are done. */
export async function inLanes(count: number, lanes: number, run: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, count) }, async () => {
      while (next < count) await run(next++);
    }),
  );
}
