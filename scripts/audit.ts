import { readFileSync } from 'node:fs';
import { runCli } from './cli';
import { auditAnchorFile, loadConfig } from '../config';
import { lastAnchor, writeAnchor } from '../db/anchors';
import { type ExportedEvent, integrateAuditChains, verifyChain, verifyExportedEvents } from '../db/audit';
import { openDatabase } from '../db/database';

const USAGE = `usage: DATABASE_URL=… npm run audit -- verify [--full] | anchor | integrate
       npm run audit -- verify-export <export.ndjson>
`;

interface Manifest {
  count: number;
  headPosition: string | null;
  headHash: string | null;
}

/**
 * An NDJSON export (GET /v1/audit) checked with nothing but the file: no database, no other agency's events. Each
 * row's digest and link; the count against the manifest; and, for an export of the whole chain (positions 1 to the
 * head, no gap), its last entry against the head the manifest names.
 */
function verifyExport(file: string): number {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const manifest = (JSON.parse(lines[0] ?? '{}') as { manifest?: Manifest }).manifest;
  const rows = lines.slice(1).map((line) => JSON.parse(line) as ExportedEvent);
  const report = verifyExportedEvents(rows);
  const last = rows.at(-1);
  const wholeChain =
    rows[0]?.chain_position === '1' && report.gaps === 0 && last?.chain_position === manifest?.headPosition;
  const headMatches = wholeChain ? last?.chain_hash === manifest?.headHash : null;
  const ok = report.ok && manifest !== undefined && rows.length === manifest.count && headMatches !== false;
  const result = { ...report, ok, manifestCount: manifest?.count ?? null, wholeChain, headMatches };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return ok ? 0 : 1;
}

/**
 * `npm run audit -- verify [--full]`: chain what is pending, then check every chain (from its last checkpoint, or
 * from its first event with --full) against the last anchor. `anchor` writes the heads out; `integrate` chains
 * what is pending; `verify-export` checks an export file on its own.
 */
async function main([command, ...args]: string[]): Promise<number> {
  if (command === 'verify-export' && args[0]) return verifyExport(args[0]);
  const config = loadConfig();
  if (!command || !['verify', 'anchor', 'integrate'].includes(command) || !config.DATABASE_URL) {
    process.stderr.write(USAGE);
    return 64;
  }
  const file = auditAnchorFile(config);
  const database = openDatabase(config.DATABASE_URL);
  try {
    const chained = await integrateAuditChains(database.db);
    if (command === 'integrate') {
      process.stdout.write(`chained ${chained} events\n`);
      return 0;
    }
    if (command === 'anchor') {
      const anchor = await writeAnchor(database.db, file);
      process.stdout.write(
        anchor
          ? `anchored ${Object.keys(anchor.chains ?? {}).length} chains in ${file}\n`
          : 'the audit trail is empty\n',
      );
      return 0;
    }
    const report = await verifyChain(database.db, lastAnchor(file), { full: args.includes('--full') });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return report.ok ? 0 : 1;
  } finally {
    await database.close();
  }
}

runCli('audit', main);
