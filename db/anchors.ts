import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Kysely } from 'kysely';
import { type Anchor, chainHead } from './audit';
import type { Database } from './schema';

/**
 * The chain's head, written out of the database (one NDJSON line per anchor), so that even a superuser
 * who rewrites the whole chain is caught: the rewritten chain no longer holds the anchored hash.
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
        if (anchor.seq && anchor.hash) return anchor;
      } catch {
        // a partial line: try the one before
      }
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Appends the current head unless it is already the last anchor; returns the anchor in force. */
export async function writeAnchor(db: Kysely<Database>, file: string): Promise<Anchor | null> {
  const head = await chainHead(db);
  const previous = lastAnchor(file);
  if (!head) return previous;
  if (previous?.seq === head.seq && previous.hash === head.hash) return previous;
  const anchor: Anchor = { seq: head.seq, hash: head.hash, at: new Date().toISOString() };
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(anchor)}\n`, { mode: 0o600 });
  return anchor;
}
