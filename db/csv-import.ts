import { parse as parseCsv } from 'csv-parse/sync';
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { clientBody, clinicianBody, providerBody } from '../api/schemas';
import type { Actor } from '../domain/case';
import { appendAuditEvent } from './audit';
import {
  type ReferenceKind,
  agencyOwned,
  type UpsertOutcome,
  clientRow,
  clinicianRow,
  providerRow,
  upsertReference,
} from './reference';
import type { Database } from './schema';

export interface ImportReport {
  kind: ReferenceKind;
  rows: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: { line: number; reason: string }[];
}

const list = (value: string | undefined) =>
  (value ?? '')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
const flag = (value: string | undefined) => {
  const v = (value ?? '').trim().toLowerCase();
  if (['true', 'yes', 'y', '1'].includes(v)) return true;
  if (['false', 'no', 'n', '0', ''].includes(v)) return false;
  return v; // left for the schema to reject, with the field named
};

/** Columns of each CSV and how a row becomes the same body the API takes. */
const FORMATS: Record<
  ReferenceKind,
  {
    id: string;
    schema: z.ZodType;
    body: (r: Record<string, string>) => unknown;
    row: (id: string, body: any) => Record<string, string | number | boolean>;
  }
> = {
  clients: {
    id: 'client_id',
    schema: clientBody,
    body: (r) => ({
      agencyId: r.agency_id,
      name: r.name,
      counselorId: r.counselor_id,
      active: flag(r.active ?? 'true'),
      riskFlags: list(r.risk_flags),
      contact: {
        // "portal:safe;mail" — a channel, and ":safe" where the client confirmed it is safe.
        channels: list(r.channels).map((c) => {
          const [channel, safe] = c.split(':');
          return { channel, safe: safe === 'safe' };
        }),
        noContactAtHome: flag(r.no_contact_at_home),
        ...(r.email ? { email: r.email } : {}),
        ...(r.postal_address ? { postalAddress: r.postal_address } : {}),
      },
      hasSubstanceUseRecords: flag(r.has_sud_records),
      needs: list(r.needs),
    }),
    row: clientRow,
  },
  clinicians: {
    id: 'clinician_id',
    schema: clinicianBody,
    body: (r) => ({
      agencyId: r.agency_id,
      name: r.name,
      capacity: r.capacity === undefined || r.capacity === '' ? undefined : Number(r.capacity),
      specialties: list(r.specialties),
      active: flag(r.active ?? 'true'),
      contact: r.contact,
    }),
    row: clinicianRow,
  },
  providers: {
    id: 'provider_id',
    schema: providerBody,
    body: (r) => ({ name: r.name, contact: r.contact, specialties: list(r.specialties) }),
    row: providerRow,
  },
};

const ID = /^[A-Za-z0-9._:-]{1,100}$/;

/**
 * Imports one CSV of reference data: every good row is upserted (a row already the same is left
 * alone), every bad row is reported by line number and reason, and a bad row never stops the others.
 */
export async function importCsv(
  db: Kysely<Database>,
  kind: ReferenceKind,
  csv: string,
  actor: Actor,
  options: {
    /** The agency the file is imported into: a row of any other agency is rejected. */
    agencyId: string;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<ImportReport & { clientIds: string[] }> {
  const { agencyId, onProgress = () => {} } = options;
  const format = FORMATS[kind];
  const report: ImportReport & { clientIds: string[] } = {
    kind,
    rows: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    rejected: [],
    clientIds: [],
  };
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parseCsv(csv, {
      columns: true,
      skip_empty_lines: true,
      trim: true,
      info: true,
      relax_column_count: true,
      bom: true,
    });
  } catch (error) {
    report.rejected.push({
      line: (error as { lines?: number }).lines ?? 1,
      reason: `not readable as CSV: ${(error as Error).message}`,
    });
    return report;
  }
  report.rows = records.length;
  const header = records[0] ? Object.keys(records[0].record) : [];
  if (records.length > 0 && !header.includes(format.id)) {
    report.rejected.push({ line: 1, reason: `the header has no ${format.id} column` });
    return report;
  }
  const seen = new Map<string, number>();
  for (const [index, { record, info }] of records.entries()) {
    const line = info.lines;
    const id = record[format.id] ?? '';
    let outcome: UpsertOutcome | undefined;
    if (!ID.test(id)) {
      report.rejected.push({ line, reason: `${format.id}: must be 1-100 letters, digits, . _ : -` });
    } else if (seen.has(id)) {
      report.rejected.push({ line, reason: `${format.id} ${id} repeats line ${seen.get(id)}` });
    } else if (agencyOwned(kind) && record.agency_id && record.agency_id !== agencyId) {
      // No import crosses agencies: a row of another agency is another agency's to import.
      report.rejected.push({
        line,
        reason: `agency_id ${record.agency_id} is not ${agencyId}, the agency imported into`,
      });
    } else {
      seen.set(id, line);
      const parsed = format.schema.safeParse(format.body({ ...record, agency_id: agencyId }));
      if (!parsed.success) {
        const reason = parsed.error.issues.map((i) => `${i.path.join('.') || 'row'}: ${i.message}`).join('; ');
        report.rejected.push({ line, reason });
      } else {
        outcome = await upsertReference(db, kind, format.row(id, { ...(parsed.data as object), agencyId }));
        report[outcome]++;
        if (kind === 'clients') report.clientIds.push(id);
      }
    }
    if (index % 50 === 0 || index === records.length - 1) onProgress(index + 1, records.length);
  }
  await appendAuditEvent(db, {
    eventKey: `import:${kind}:${Date.now()}:${Math.random().toString(36).slice(2)}`,
    agencyId: agencyOwned(kind) ? agencyId : null,
    actor,
    action: `${kind}.imported`,
    outcome: report.rejected.length ? 'refused' : 'done',
    outcomeReason: report.rejected.length ? `${report.rejected.length} row(s) rejected` : null,
    after: {
      rows: report.rows,
      inserted: report.inserted,
      updated: report.updated,
      unchanged: report.unchanged,
      rejected: report.rejected.length,
    },
  });
  return report;
}
