/**
 * Writes events into the outbox inside the caller's transaction: they commit or roll back with the
 * caller's own rows. Every event is checked first; one bad event means nothing is written.
 */
import { uuidv7 } from 'uuidv7';
import { OutboxError } from '../errors.ts';
import type { OutboxEvent } from '../event.ts';
import { insertEvents, type RecordColumn } from '../sql.ts';
import { executorFor, type Connection } from './executor.ts';
import { DEFAULT_SCHEMA } from '../config.ts';
import { checkEvent, checkSize } from './validate.ts';

export interface RecordOptions {
  /** Postgres schema of the outbox tables. Default `posthog_outbox`. */
  schema?: string;
}

/** `null`/`undefined` entries are skipped: `run.abort(reason)` returns null when the contract wants no event. */
export type Recordable = OutboxEvent | null | undefined;

function toRow(event: OutboxEvent, now: Date): Record<RecordColumn, unknown> {
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
 * Records `events` in the outbox through `tx`, in one statement, and returns their uuids (UUIDv7, assigned
 * now, and sent to PostHog as the event uuid). Throws `OutboxError` before any SQL runs when an event is
 * invalid; a database error propagates as is (and aborts your transaction, as any failed statement does).
 *
 * @example
 * await db.transaction(async (tx) => {
 *   await tx.insert(messages).values(message);
 *   await record(tx, run.complete({ finishReason: 'stop', threadStatus: 'completed' }));
 * });
 */
export async function record(tx: Connection, events: Recordable | readonly Recordable[], options: RecordOptions = {}): Promise<string[]> {
  const execute = executorFor(tx);
  const many = Array.isArray(events);
  const list = (many ? (events as readonly Recordable[]) : [events as Recordable]);
  const now = new Date();
  const uuids: string[] = [];
  const rows: string[] = [];
  list.forEach((candidate, i) => {
    if (candidate === null || candidate === undefined) return;
    const field = many ? `events[${i}]` : 'event';
    const row = toRow(checkEvent(candidate, field), now);
    const json = JSON.stringify(row);
    checkSize(json, field);
    uuids.push(row.uuid as string);
    rows.push(json);
  });
  if (rows.length === 0) return uuids;
  const statement = insertEvents(options.schema ?? DEFAULT_SCHEMA);
  await execute(statement, [`[${rows.join(',')}]`]);
  return uuids;
}

