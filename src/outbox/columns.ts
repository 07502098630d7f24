/**
 * The declarations every statement shares: the schema name check, and the outbox's columns, declared once
 * (a test checks them against the drizzle schema, src/outbox/schema.ts).
 */
import { OutboxError } from '../errors/errors.ts';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a Postgres schema name and returns it quoted. */
export function quoteSchema(schema: string): string {
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema)) {
    throw new OutboxError('invalid', 'schema', `must match ${IDENTIFIER} (lower-case letters, digits, underscores), got ${JSON.stringify(schema)}`);
  }
  return `"${schema}"`;
}

/** Columns written by `record()`, with their Postgres types, in the order of the JSON rows. */
export const RECORD_COLUMNS = [
  ['uuid', 'uuid'],
  ['event', 'text'],
  ['distinct_id', 'text'],
  ['properties', 'jsonb'],
  ['groups', 'jsonb'],
  ['timestamp', 'timestamptz'],
  ['user_id', 'text'],
  ['user_profile', 'jsonb'],
  ['automation_id', 'text'],
  ['automation_profile', 'jsonb'],
  ['organization_id', 'text'],
  ['organization_profile', 'jsonb'],
] as const;

export type RecordColumn = (typeof RECORD_COLUMNS)[number][0];

/** The columns the worker adds to the identify rows it writes (the entity and its profile version). */
export const IDENTITY_COLUMNS = [
  ['identity_kind', 'text'],
  ['identity_id', 'text'],
  ['identity_version', 'bigint'],
] as const;

export type IdentityColumn = (typeof IDENTITY_COLUMNS)[number][0];

/** `"a", "b", ...` of `RECORD_COLUMNS` (the event as recorded), prefixed by `alias.` if given. */
export function recordColumnList(alias?: string): string {
  return RECORD_COLUMNS.map(([name]) => `${alias ? `${alias}.` : ''}"${name}"`).join(', ');
}

/** The columns moved between the outbox and the dead-letter table: the event as recorded, then its delivery history. */
export const EVENT_COLUMNS = `${recordColumnList()}, "attempts", "last_error", "created_at"`;

/**
 * Rows that have failed: the predicate of the partial `next_attempt_at` index (`outbox_retry_idx`), written once
 * so that every statement about retries says it the same way and the planner reads that index. The other rows
 * (`UNTRIED_ROWS`) are due from their write and are found in primary-key order.
 */
export const FAILED_ROWS = `"attempts" > 0`;
export const UNTRIED_ROWS = `"attempts" = 0`;
