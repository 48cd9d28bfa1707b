import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
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
  const lines = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
  const last = lines.at(-1);
  return last ? (JSON.parse(last) as Anchor) : null;
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
