/**
 * Writes events into the outbox inside the caller's transaction: they commit or roll back with the
 * caller's own rows. Every event is checked first; one bad event means nothing is written.
 */
import { uuidv7 } from '../uuid.ts';
import type { OutboxEvent } from '../event.ts';
import { IDENTITY_COLUMNS, insertEvents, RECORD_COLUMNS, VALUES_ROWS_LIMIT, type RecordColumn } from '../sql/index.ts';
import { executorFor, type Connection } from './executor.ts';
import { DEFAULT_SCHEMA } from '../config.ts';
import { checkEvent, checkSize } from './validate.ts';

export interface RecordOptions {
  /** Postgres schema of the outbox tables. Default `posthog_outbox`. */
  schema?: string;
}

/** `null`/`undefined` entries are skipped: `run.abort(reason)` returns null when the contract wants no event. */
export type Recordable = OutboxEvent | null | undefined;

/** An event as `record()` stores it, one row of the outbox (exported for the bench's backlog, bench/database.ts). */
export function toRow(event: OutboxEvent, now: Date): Record<RecordColumn, unknown> {
  const { user, automation, organization } = event.profiles;
  return {
    uuid: uuidv7(),
    event: event.event,
    distinct_id: event.distinctId,
    properties: event.properties,
    groups: event.groups,
    timestamp: (event.timestamp ?? now).toISOString(),
    user_id: user?.id ?? null,
    user_profile: user?.fields ?? null,
    automation_id: automation?.id ?? null,
    automation_profile: automation?.fields ?? null,
    organization_id: organization?.id ?? null,
    organization_profile: organization?.fields ?? null,
  };
}

/**
 * Records `events` in the outbox through `tx`, in one statement (a row per event), and returns their uuids
 * (UUIDv7, assigned now, and sent to PostHog as the event uuid). `tx` is a transaction (or, for a one-off
 * write, a database, pool or client) of drizzle, postgres.js, Kysely, Knex, PGlite or node-postgres
 * (`./executor.ts`). Throws `OutboxError` before any SQL runs when an event is invalid; a database error
 * propagates as is (and aborts your transaction, as any failed statement does).
 *
 * @example
 * await db.transaction(async (tx) => {
 *   await tx.insert(messages).values(message);
 *   await record(tx, run.complete({ finishReason: 'stop', threadStatus: 'completed' }));
 * });
 */
export async function record(tx: Connection, events: Recordable | readonly Recordable[], options: RecordOptions = {}): Promise<string[]> {
  const many = Array.isArray(events);
  const list = many ? (events as readonly Recordable[]) : [events as Recordable];
  return insert(
    tx,
    list.map((event, i) => [event, many ? `events[${i}]` : 'event', undefined]),
    options.schema ?? DEFAULT_SCHEMA,
  );
}

/** The entity an identify row identifies, and the profile version it carries (the worker's identify rows). */
export interface IdentityTag {
  kind: string;
  id: string;
  version: number;
}

/**
 * `record()` for the worker's and the backfill's identify rows: each event tagged with the entity it
 * identifies and its profile version, so a newer identify supersedes it while it is still queued.
 */
export function recordIdentifies(
  tx: Connection,
  items: readonly { event: OutboxEvent; identity: IdentityTag }[],
  schema: string = DEFAULT_SCHEMA,
): Promise<string[]> {
  return insert(
    tx,
    items.map(({ event, identity }, i) => [event, `identifies[${i}]`, identity]),
    schema,
  );
}

const ALL_COLUMNS = [...RECORD_COLUMNS, ...IDENTITY_COLUMNS];

async function insert(tx: Connection, list: readonly [Recordable, string, IdentityTag | undefined][], schema: string): Promise<string[]> {
  const execute = executorFor(tx);
  const now = new Date();
  const uuids: string[] = [];
  const rows: Record<string, unknown>[] = [];
  const json: string[] = [];
  let tagged = false;
  for (const [candidate, field, identity] of list) {
    if (candidate === null || candidate === undefined) continue;
    const row: Record<string, unknown> = toRow(checkEvent(candidate, field), now);
    if (identity) {
      tagged = true;
      row.identity_kind = identity.kind;
      row.identity_id = identity.id;
      row.identity_version = identity.version;
    }
    // The row as JSON: its size is checked, and above VALUES_ROWS_LIMIT rows it is what the statement gets.
    const text = JSON.stringify(row);
    checkSize(text, field, row.event as string);
    uuids.push(row.uuid as string);
    rows.push(row);
    json.push(text);
  }
  if (rows.length === 0) return uuids;
  await execute(insertEvents(schema, rows.length, tagged), rows.length > VALUES_ROWS_LIMIT ? [`[${json.join(',')}]`] : valueParams(rows, tagged));
  return uuids;
}

/** The `VALUES` parameters of `insertEvents`: each row's columns in order, as text (jsonb as JSON) or null. */
function valueParams(rows: readonly Record<string, unknown>[], tagged: boolean): (string | null)[] {
  const columns = tagged ? ALL_COLUMNS : RECORD_COLUMNS;
  const params: (string | null)[] = [];
  for (const row of rows) {
    for (const [name, type] of columns) {
      const value = row[name];
      params.push(value === null || value === undefined ? null : type === 'jsonb' ? JSON.stringify(value) : String(value));
    }
  }
  return params;
}
