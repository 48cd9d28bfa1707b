import { reconcile } from '../activities/reconcile';
import { encryptingDataConverter, payloadKeyring } from '../codec';
import { auditAnchorFile, loadConfig, requireConnections } from '../config';
import { openDatabase } from '../db/database';
import { DRIFT_CHECKS, DRIFT_LABELS } from '../domain/reconcile';
import { openTemporalClient, temporalTarget } from '../temporal';

const USAGE =
  'usage: DATABASE_URL=… TEMPORAL_ADDRESS=… npm run reconcile [-- --json] [--settle-minutes N] [--full-audit]\n';

/**
 * `npm run reconcile`: compares Temporal with PostgreSQL, the same checks as the scheduled reconcile, and prints
 * the drift (ids, statuses and counts only). `--full-audit` checks the audit chains from their genesis. Exit code 0 when clean, 1 on drift, 2 when it could not run.
 */
async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const settleAt = argv.indexOf('--settle-minutes');
  const settleMinutes = settleAt >= 0 ? Number(argv[settleAt + 1]) : undefined;
  const fullAudit = argv.includes('--full-audit');
  const known = new Set(['--json', '--full-audit', ...(settleAt >= 0 ? ['--settle-minutes', argv[settleAt + 1]] : [])]);
  if (argv.some((a) => !known.has(a)) || (settleMinutes !== undefined && !(settleMinutes >= 0))) {
    process.stderr.write(USAGE);
    return 2;
  }
  const config = requireConnections(loadConfig());
  const database = openDatabase(config.DATABASE_URL);
  const temporal = openTemporalClient(temporalTarget(config), config.TEMPORAL_NAMESPACE, {
    dataConverter: encryptingDataConverter(payloadKeyring(config)),
  });
  try {
    const report = await reconcile(
      { db: database.db, temporal: temporal.client, auditAnchorFile: auditAnchorFile(config) },
      {
        ...(settleMinutes === undefined ? {} : { settleMs: settleMinutes * 60_000 }),
        // Every audit chain from its genesis, not from the last checkpoints.
        ...(fullAudit ? { fullAuditVerify: true } : {}),
      },
    );
    if (json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      const { checked } = report;
      process.stdout.write(
        `reconcile: ${report.ok ? 'clean' : `${report.drifts.length} drift${report.drifts.length === 1 ? '' : 's'}`}` +
          ` (checked ${checked.caseRows} case rows, ${checked.caseWorkflows} case workflows, ` +
          `${checked.transfers} transfers, ${checked.auditEvents} audit events)\n`,
      );
      for (const check of DRIFT_CHECKS) {
        const found = report.drifts.filter((d) => d.check === check);
        if (found.length === 0) continue;
        process.stdout.write(`${check}: ${found.length} ${DRIFT_LABELS[check]}\n`);
        for (const d of found) process.stdout.write(`  ${d.agencyId ?? '(no agency)'}  ${d.subject}  ${d.detail}\n`);
      }
    }
    return report.ok ? 0 : 1;
  } finally {
    await temporal.close();
    await database.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`reconcile could not run: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
