import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { Pool } from 'pg';
import { appendAuditEvent } from '../db/audit';
import { type DatabaseHandle, openDatabase } from '../db/database';
import { roleOf } from '../db/roles';
import { type Benchmark, type RunResult, secondsSince } from './benchmark';
import { inLanes } from './lanes';
import type { Services } from './services';

const WRITERS = 32;
const AGENCIES = 4;
const PLAIN_TABLE = 'bench_audit_plain';

interface AppendState {
  services: Services;
  /** The service's role, a connection per writer. */
  database: DatabaseHandle;
  pool: Pool;
  /** The key prefix of the events the last service run appended: the baseline inserts the same rows. */
  lastTag?: string;
}

interface AppendSize {
  events: number;
}

export const auditAppendBenchmark: Benchmark<AppendState, AppendSize> = {
  name: 'audit_append',
  a: `appendAuditEvent, each on its own (one statement that commits by itself, as an audited read appends), by ${WRITERS} writers at once in ${AGENCIES} agencies`,
  b: `plain INSERTs of the rows the service run appended, by ${WRITERS} writers, into a table with the same columns and indexes`,
  figures: [{ key: 'eventsPerSecond', label: 'events appended per second', unit: '/s', better: 'higher' }],
  goal: { text: 'ratio ≤ 2', ratios: [{ key: 'eventsPerSecond', max: 2 }] },
  size: (options) => ({ events: options.appends ?? (options.quick ? 1000 : 20_000) }),
  warmupSize: ({ events }) => ({ events: Math.max(WRITERS * 4, Math.round(events / 10)) }),

  async prepare(services) {
    const database = openDatabase(services.serviceUrl, { poolSize: WRITERS });
    const pool = new Pool({ connectionString: services.serviceUrl, max: WRITERS });
    return { services, database, pool };
  },

  async runA(state, { events }): Promise<RunResult> {
    const tag = randomUUID();
    const startedAt = performance.now();
    await inLanes(events, WRITERS, async (n) => {
      await appendAuditEvent(state.database.db, {
        eventKey: `bench-append:${tag}:${n}`,
        agencyId: `bench-append-${n % AGENCIES}`,
        actor: { id: `user-${n % 40}`, role: 'staff' },
        action: 'case.viewed.details',
        clientId: `client-${n % 500}`,
        outcome: 'done',
        requestId: `req-${n}`,
        sourceAddress: '127.0.0.1',
        after: { n },
      });
    });
    const seconds = secondsSince(startedAt);
    state.lastTag = tag;
    return { figures: { eventsPerSecond: events / seconds }, extras: { seconds } };
  },

  async runB(state, { events }): Promise<RunResult> {
    if (!state.lastTag) throw new Error('the service side runs first: the baseline inserts its rows');
    const { owner, db, serviceUrl } = state.services;
    // A fresh table each run, with audit_events' columns, defaults, constraints and indexes, but not its triggers.
    await sql`drop table if exists ${sql.table(PLAIN_TABLE)}`.execute(owner);
    await sql`create table ${sql.table(PLAIN_TABLE)} (like audit_events including all)`.execute(owner);
    await sql`grant insert on ${sql.table(PLAIN_TABLE)} to ${sql.id(roleOf(serviceUrl))}`.execute(owner);
    const { rows } = await sql<Record<string, unknown>>`
      select * from audit_events where event_key like ${`bench-append:${state.lastTag}:%`} order by seq`.execute(db);
    if (rows.length !== events) throw new Error(`the service run appended ${rows.length} events, not ${events}`);
    const columns = Object.keys(rows[0]!);
    const insert =
      `insert into ${PLAIN_TABLE} (${columns.map((c) => `"${c}"`).join(', ')}) ` +
      `values (${columns.map((_, i) => `$${i + 1}`).join(', ')})`;
    const startedAt = performance.now();
    await inLanes(rows.length, WRITERS, async (n) => {
      const row = rows[n]!;
      await state.pool.query(
        insert,
        columns.map((c) =>
          row[c] !== null && typeof row[c] === 'object' && !(row[c] instanceof Date) ? JSON.stringify(row[c]) : row[c],
        ),
      );
    });
    const seconds = secondsSince(startedAt);
    return { figures: { eventsPerSecond: rows.length / seconds }, extras: { seconds } };
  },

  async finish(state) {
    await state.pool.end();
    await state.database.close();
    await sql`drop table if exists ${sql.table(PLAIN_TABLE)}`.execute(state.services.owner);
  },

  unitOf: ({ events }) => ({ name: 'append', count: events }),
};
