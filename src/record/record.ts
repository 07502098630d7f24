/**
 * Writes events into the outbox inside the caller's transaction: they commit or roll back with the
 * caller's own rows. Every event is checked first; one bad event means nothing is written.
 */
import { uuidv7 } from './uuid.ts';
import type { OutboxEvent } from './event.ts';
import { IDENTITY_COLUMNS, RECORD_COLUMNS, type RecordColumn } from '../outbox/columns.ts';
import { insertEvents, VALUES_ROWS_LIMIT } from './record.sql.ts';
import { executorFor, type Connection } from './executor.ts';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import { checkEvent, checkSize, MAX_EVENT_BYTES } from './validate.ts';

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
 * write, a database, pool or client) of drizzle, postgres.js, Kysely, Knex, PGlite or node-postgres, or a
 * transaction of Prisma, TypeORM, Sequelize or MikroORM (`./executor.ts`). Throws `OutboxError` before any SQL runs when an event is invalid; a database error
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
  const tagged = list.some(([candidate, , identity]) => identity !== undefined && candidate !== null && candidate !== undefined);
  const columns = tagged ? ALL_COLUMNS : RECORD_COLUMNS;
  // Up to VALUES_ROWS_LIMIT rows the statement takes each column as a parameter, above it every row as JSON:
  // each event is serialised once, in the form the statement gets.
  const asJson = list.filter(([candidate]) => candidate !== null && candidate !== undefined).length > VALUES_ROWS_LIMIT;
  const params: (string | null)[] = [];
  for (const [candidate, field, identity] of list) {
    if (candidate === null || candidate === undefined) continue;
    const row: Record<string, unknown> = toRow(checkEvent(candidate, field), now);
    if (identity) {
      row.identity_kind = identity.kind;
      row.identity_id = identity.id;
      row.identity_version = identity.version;
    }
    uuids.push(row.uuid as string);
    if (asJson) {
      const text = JSON.stringify(row);
      checkSize(text, field, row.event as string);
      params.push(text);
      continue;
    }
    const values = columnValues(row, columns);
    // The size is checked on the row's JSON, built only when the columns' texts could make it too large.
    if (jsonLengthBound(values, columns) * 3 > MAX_EVENT_BYTES) checkSize(JSON.stringify(row), field, row.event as string);
    params.push(...values);
  }
  if (uuids.length === 0) return uuids;
  await execute(insertEvents(schema, uuids.length, tagged), asJson ? [`[${params.join(',')}]`] : params);
  return uuids;
}

/** A row's columns in order, as `insertEvents`' VALUES parameters: text (jsonb as JSON) or null. */
function columnValues(row: Record<string, unknown>, columns: typeof ALL_COLUMNS | typeof RECORD_COLUMNS): (string | null)[] {
  return columns.map(([name, type]) => {
    const value = row[name];
    return value === null || value === undefined ? null : type === 'jsonb' ? JSON.stringify(value) : String(value);
  });
}

/** Keys, quotes, separators and `null`s of a row's JSON: its 15 columns' names are under 25 characters each. */
const ROW_JSON_ROOM = 1024;

/**
 * At least the length (UTF-16 units) of `JSON.stringify(row)` given its column `values`: a jsonb column's text
 * is its JSON as is, any other column's at most 6 units a character (`\u` escapes) plus its quotes.
 */
function jsonLengthBound(values: readonly (string | null)[], columns: typeof ALL_COLUMNS | typeof RECORD_COLUMNS): number {
  let length = ROW_JSON_ROOM;
  values.forEach((value, i) => {
    if (value !== null) length += columns[i]![1] === 'jsonb' ? value.length : 6 * value.length + 2;
  });
  return length;
}
