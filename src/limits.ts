/**
 * Limits and checks shared by the attribution contract (src/attribution) and the write path (src/outbox):
 * what PostHog accepts of an id or a string. Pure: no I/O, so the contract depends on nothing that does any.
 */
import { OutboxError } from './errors.ts';

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
  return typeof value === 'string' && value.length <= MAX_ID_LENGTH && value.trim() !== '' && value.isWellFormed() && !value.includes('\u0000');
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
