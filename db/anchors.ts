import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Kysely } from 'kysely';
import { type Anchor, chainHeads } from './audit';
import type { Database } from './schema';

/**
 * The chains' heads, written out of the database (one NDJSON line per anchor: every chain's position and hash),
 * so that even a superuser who rewrites a whole chain is caught: the rewritten chain no longer holds the anchored
 * hash. The file is the service's signed tree head, minus the signature: keep a copy where the database's
 * administrators cannot write.
 */
export function lastAnchor(file: string): Anchor | null {
  if (!existsSync(file)) return null;
  // Only the tail is read; a line cut short by a crash is skipped for the one before it.
  const size = statSync(file).size;
  const fd = openSync(file, 'r');
  try {
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n').filter(Boolean).reverse();
    for (const line of lines) {
      try {
        const anchor = JSON.parse(line) as Anchor;
        if (anchor.chains || (anchor.seq && anchor.hash)) return anchor;
      } catch {
        // a partial line: try the one before
      }
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

function sameHeads(a: Anchor['chains'], b: Anchor['chains']): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Appends every chain's head unless they are the last anchor's; returns the anchor in force. */
export async function writeAnchor(db: Kysely<Database>, file: string): Promise<Anchor | null> {
  const heads = await chainHeads(db);
  const previous = lastAnchor(file);
  if (heads.length === 0) return previous;
  const chains = Object.fromEntries(heads.map((h) => [h.chain, { position: h.position, hash: h.hash }]));
  if (previous && sameHeads(previous.chains, chains)) return previous;
  const anchor: Anchor = { at: new Date().toISOString(), chains };
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(anchor)}\n`, { mode: 0o600 });
  return anchor;
}
