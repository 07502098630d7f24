/**
 * Limits and checks shared by the attribution contract (src/attribution) and the write path (src/outbox):
 * what PostHog accepts of an id or a string. Pure: no I/O, so the contract depends on nothing that does any.
 */
import { OutboxError } from '../errors/errors.ts';

/** PostHog caps distinct ids (and we cap event names) at 200 characters. */
export const MAX_ID_LENGTH = 200;

/** How a value is named in an error message: `null`, `an array`, `a Map`, `42`, `a string`. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${(value as object).constructor?.name ?? 'object'}`;
  return typeof value === 'number' ? String(value) : `a ${typeof value}`;
}

/** A string Postgres' jsonb and PostHog accept: well-formed UTF-16 (no lone surrogates) and no NUL. */
export function checkString(value: string, field: string): void {
  if (!value.isWellFormed()) throw new OutboxError('not_serializable', field, 'contains a lone surrogate (not valid Unicode)');
  if (value.includes('\u0000')) throw new OutboxError('not_serializable', field, 'contains a NUL character, which Postgres cannot store');
}

/** Whether `value` passes checkId (without naming a field: nothing is allocated on the way). */
export function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_ID_LENGTH && value.trim() !== '' && isStorable(value);
}

/** A non-empty string of at most MAX_ID_LENGTH characters. */
export function checkId(value: unknown, field: string): string {
  if (isId(value)) return value;
  if (value === undefined || value === null || value === '') throw new OutboxError('required', field, 'is required');
  if (typeof value !== 'string') throw new OutboxError('invalid', field, `must be a string, got ${describe(value)}`);
  if (value.trim() === '') throw new OutboxError('required', field, 'is blank');
  if (value.length > MAX_ID_LENGTH) throw new OutboxError('too_long', field, `is ${value.length} characters; PostHog accepts at most ${MAX_ID_LENGTH}`);
  checkString(value, field);
  return value;
}

/**
 * The range of an event's `timestamp`, inclusive: 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z (UTC).
 *
 * - Above: `Date.prototype.toISOString()` writes a year after 9999 with six digits and a sign
 *   (`+010000-01-01T...`), which PostgreSQL's `timestamptz` refuses ("time zone displacement out of range"),
 *   and PostHog's ingestion replaces a timestamp after year 9999 with the time it received the event.
 * - Below: year 0 (`0000-...`) and negative years (`-000001-...`) are refused by `timestamptz`; years 1 to 99
 *   it stores, but postgres.js reads them back through `new Date("0050-01-01 00:00:00+00")`, which makes them
 *   1950 (the worker would send another time than was recorded); PostHog keeps timestamps in ClickHouse
 *   `DateTime64`, whose range starts in 1900 (older values are clamped). 1970 rather than 1900: nothing
 *   this library records (chat runs, tool calls, profiles) happened before the Unix epoch, so an earlier
 *   Date is a bug (a negative epoch, a two-digit year parsed as 19xx) and is refused rather than sent.
 */
export const MIN_TIMESTAMP_MS = Date.UTC(1970, 0, 1);
export const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const TIMESTAMP_RANGE = '1970-01-01..9999-12-31';

/**
 * A valid Date within MIN_TIMESTAMP_MS..MAX_TIMESTAMP_MS: an event's time, as `record()` and the builders
 * that take one check it. Throws `OutboxError('invalid')` naming `field` and the value otherwise.
 */
export function checkTimestamp(value: unknown, field: string): Date {
  if (!(value instanceof Date)) throw new OutboxError('invalid', field, `must be a valid Date, got ${describe(value)}`);
  const ms = value.getTime();
  if (Number.isNaN(ms)) throw new OutboxError('invalid', field, 'must be a valid Date, got an invalid Date');
  if (ms < MIN_TIMESTAMP_MS || ms > MAX_TIMESTAMP_MS) throw new OutboxError('invalid', field, `${value.toISOString()} is outside ${TIMESTAMP_RANGE} (UTC)`);
  return value;
}

/** Whether checkString passes `value` (nothing is allocated on the way). */
export function isStorable(value: string): boolean {
  return value.isWellFormed() && !value.includes('\u0000');
}

/**
 * An object key, checked as checkString checks a string: jsonb cannot hold a NUL or a lone surrogate in a key
 * either. The error names `field` followed by ` (key)`.
 */
export function checkKey(key: string, field: string): void {
  if (!isStorable(key)) checkString(key, `${field} (key)`);
}
