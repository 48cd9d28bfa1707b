import { runCli } from './cli';
import { auditAnchorFile, loadConfig } from '../config';
import { lastAnchor, writeAnchor } from '../db/anchors';
import { verifyChain } from '../db/audit';
import { openDatabase } from '../db/database';

/** `npm run audit -- verify | anchor`: check the chain against the last anchor, or write a new anchor. */
async function main([command]: string[]): Promise<number> {
  const config = loadConfig();
  if (!command || !['verify', 'anchor'].includes(command) || !config.DATABASE_URL) {
    process.stderr.write('usage: DATABASE_URL=… npm run audit -- verify | anchor\n');
    return 64;
  }
  const file = auditAnchorFile(config);
  const database = openDatabase(config.DATABASE_URL);
  try {
    if (command === 'anchor') {
      const anchor = await writeAnchor(database.db, file);
      process.stdout.write(
        anchor ? `anchored seq ${anchor.seq} ${anchor.hash} in ${file}\n` : 'the audit trail is empty\n',
      );
      return 0;
    }
    const report = await verifyChain(database.db, lastAnchor(file));
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return report.ok ? 0 : 1;
  } finally {
    await database.close();
  }
}

runCli('audit', main);
