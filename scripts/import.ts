import { readFileSync } from 'node:fs';
import { runCli } from './cli';
import { encryptingDataConverter, payloadKeyring } from '../codec';
import { loadConfig } from '../config';
import { importCsv } from '../db/csv-import';
import { openDatabase } from '../db/database';
import { tellOpenCases } from '../api/client-facts';
import { openTemporalClient, temporalTarget } from '../temporal';
import type { ReferenceKind } from '../db/reference';
import { ROLES, type Role } from '../domain/case';

const USAGE = `usage: npm run import -- <clients|clinicians|providers> <file.csv> --agency <agency-id> [--actor <user-id>] [--role <role>]
  every row is imported into --agency; a row whose agency_id names another agency is rejected
  clients:    client_id,agency_id,name,counselor_id,active,risk_flags,channels,no_contact_at_home,has_sud_records,needs
  clinicians: clinician_id,agency_id,name,capacity,specialties,active,contact
  providers:  provider_id,name,contact,specialties
  lists are separated by ';'; a channel confirmed safe is written "portal:safe"`;

function bar(done: number, total: number): string {
  const width = 30;
  const filled = total ? Math.round((done / total) * width) : width;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} rows`;
}

/** `npm run import`: reference data from CSV, with a progress bar and a report of every bad row. */
async function main(argv: string[]): Promise<number> {
  const [kind, file, ...rest] = argv;
  if (!kind || !file || !['clients', 'clinicians', 'providers'].includes(kind)) {
    process.stderr.write(`${USAGE}\n`);
    return 64;
  }
  const option = (name: string) => {
    const at = rest.indexOf(`--${name}`);
    return at >= 0 ? rest[at + 1] : undefined;
  };
  const role = (option('role') ?? 'staff') as Role;
  if (!ROLES.includes(role)) {
    process.stderr.write(`--role must be one of ${ROLES.join(', ')}\n`);
    return 64;
  }
  const config = loadConfig();
  if (!config.DATABASE_URL) {
    process.stderr.write('DATABASE_URL must point at the database to import into\n');
    return 64;
  }
  const agencyId = option('agency');
  if (!agencyId) {
    process.stderr.write(`--agency is required\n${USAGE}\n`);
    return 64;
  }
  const csv = readFileSync(file, 'utf8');
  const database = openDatabase(config.DATABASE_URL);
  // A changed client record reaches its open cases; without Temporal they re-read it at their next outward act.
  const temporal = config.TEMPORAL_ADDRESS
    ? openTemporalClient(temporalTarget(config), config.TEMPORAL_NAMESPACE, {
        dataConverter: encryptingDataConverter(payloadKeyring(config)),
      })
    : undefined;
  try {
    const report = await importCsv(
      database.db,
      kind as ReferenceKind,
      csv,
      { id: option('actor') ?? 'cli', role },
      {
        agencyId,
        onProgress: (done, total) => process.stderr.write(`\r${bar(done, total)}`),
      },
    );
    process.stderr.write('\n');
    if (temporal && report.clientIds.length) {
      const told = await tellOpenCases(database.db, temporal.client, agencyId, report.clientIds, { requestId: null });
      process.stdout.write(`${told.length} open case(s) told to re-read their client's record\n`);
    } else if (report.clientIds.length) {
      process.stdout.write('TEMPORAL_ADDRESS is not set: open cases were not told of the changes\n');
    }
    for (const { line, reason } of report.rejected) process.stdout.write(`line ${line}: ${reason}\n`);
    process.stdout.write(
      `${report.kind}: ${report.rows} rows, ${report.inserted} inserted, ${report.updated} updated, ${report.unchanged} unchanged, ${report.rejected.length} rejected\n`,
    );
    return report.rejected.length ? 2 : 0;
  } finally {
    await temporal?.close();
    await database.close();
  }
}

runCli('import', main);
