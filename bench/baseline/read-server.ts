import type { AddressInfo } from 'node:net';
import express from 'express';
import { Pool } from 'pg';

/** The read baseline: a bare Express handler doing one primary-key SELECT, no authentication, no audit. */
async function main({ databaseUrl }: { databaseUrl: string }): Promise<void> {
  const pool = new Pool({ connectionString: databaseUrl, max: 10 });
  const app = express();
  app.get('/v1/cases/:caseId', async (req, res) => {
    const { rows } = await pool.query('select * from cases where case_id = $1', [req.params.caseId]);
    if (rows.length === 0) res.status(404).end();
    else res.json(rows[0]);
  });
  const server = app.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.send?.({ url: `http://127.0.0.1:${port}` });
    process.channel?.unref();
  });
  process.once('SIGTERM', () => {
    server.close(() => void pool.end());
  });
}

process.once('message', (settings: { databaseUrl: string }) => {
  main(settings).catch((error: unknown) => {
    process.stderr.write(`bare read server failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
});
