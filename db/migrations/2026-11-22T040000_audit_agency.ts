import type { Kysely } from 'kysely';

// Each event names the agency it belongs to, so compliance exports only their own agency's trail.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit_events').addColumn('agency_id', 'text').execute();
  await db.schema.createIndex('audit_events_agency_idx').on('audit_events').columns(['agency_id', 'seq']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('audit_events').dropColumn('agency_id').execute();
}
