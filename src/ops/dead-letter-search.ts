/**
 * One dead letter at a time, as an operator looks into them: find them by event, reason and time, read one
 * whole (secrets redacted), or delete chosen ones. (`dead-letters.ts` lists, retries and purges.)
 */
import type postgres from 'postgres';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import { OutboxError } from '../errors/errors.ts';
import { redactJson, redactSecrets } from '../errors/redact.ts';
import { query } from '../sql/statement.ts';
import { deadLetterOf } from './dead-letters.ts';
import * as q from './inspect.sql.ts';
import type { DeadLetter } from './dead-letters.ts';

export interface DeadLetterFilter {
  /** The event name, exactly. */
  event?: string;
  /** Text the reason contains, in any case. */
  reason?: string;
  /** Died at or after this time. */
  diedAfter?: Date;
  /** Died before this time. */
  diedBefore?: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The uuids given, lower-cased and each once; OutboxError (`ids`) when one is not a uuid or none is given. */
function checkIds(ids: readonly string[]): string[] {
  const wanted = [...new Set(ids.map((id) => String(id).toLowerCase()))];
  if (wanted.length === 0) throw new OutboxError('required', 'ids', 'give the uuid of at least one dead letter');
  const bad = wanted.find((id) => !UUID.test(id));
  if (bad !== undefined) throw new OutboxError('invalid', 'ids', `${JSON.stringify(bad.slice(0, 60))} is not a uuid`);
  return wanted;
}

/**
 * Up to `limit` dead letters (default 50, at most 10,000) that match `filter`, newest first, as `listDeadLetters`
 * lists them (without a filter, the same rows), their reasons masked as `readStatus` masks them; `matched` is how
 * many match in all.
 */
export async function findDeadLetters(
  sql: postgres.Sql,
  filter: DeadLetterFilter = {},
  options: { schema?: string; limit?: number } = {},
): Promise<{ deadLetters: DeadLetter[]; matched: number }> {
  const limit = options.limit ?? 50;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000)
    throw new OutboxError('invalid', 'limit', `must be a whole number from 1 to 10000, got ${limit}`);
  for (const [field, date] of [
    ['diedAfter', filter.diedAfter],
    ['diedBefore', filter.diedBefore],
  ] as const) {
    if (date !== undefined && !(date instanceof Date && Number.isFinite(date.getTime()))) throw new OutboxError('invalid', field, 'must be a valid Date');
  }
  const text = (value: string | undefined) => (value === undefined || value === '' ? null : value);
  const rows = await query(sql, q.findDeadLetters(options.schema ?? DEFAULT_SCHEMA), {
    limit,
    event: text(filter.event),
    reason: text(filter.reason),
    from: filter.diedAfter?.toISOString() ?? null,
    until: filter.diedBefore?.toISOString() ?? null,
  });
  return {
    deadLetters: rows.map((r) => ({ ...deadLetterOf(r), reason: redactSecrets(r.reason) })),
    matched: rows[0]?.matched ?? 0,
  };
}

/** A dead letter whole: the event as recorded (its properties, groups and profile snapshots) and its delivery history. */
export interface DeadLetterDetail extends DeadLetter {
  timestamp: string;
  properties: unknown;
  groups: unknown;
  userId: string | null;
  userProfile: unknown;
  automationId: string | null;
  automationProfile: unknown;
  organizationId: string | null;
  organizationProfile: unknown;
  lastError: string | null;
  createdAt: string;
}

/**
 * The dead letter `uuid` whole, its secrets redacted (`redactJson`: credentials in strings, values of keys naming
 * a credential); null when there is none. OutboxError (`ids`) when `uuid` is not a uuid.
 */
export async function readDeadLetter(sql: postgres.Sql, uuid: string, options: { schema?: string } = {}): Promise<DeadLetterDetail | null> {
  const id = checkIds([uuid])[0]!;
  const [r] = await query(sql, q.readDeadLetter(options.schema ?? DEFAULT_SCHEMA), { uuid: id });
  if (!r) return null;
  return redactJson({
    ...deadLetterOf(r),
    timestamp: r.timestamp.toISOString(),
    properties: r.properties,
    groups: r.groups,
    userId: r.user_id,
    userProfile: r.user_profile,
    automationId: r.automation_id,
    automationProfile: r.automation_profile,
    organizationId: r.organization_id,
    organizationProfile: r.organization_profile,
    lastError: r.last_error,
    createdAt: r.created_at.toISOString(),
  }) as DeadLetterDetail;
}

/**
 * Deletes the dead letters `ids` (up to 10,000) in one statement; returns how many were deleted (an id that is
 * no longer a dead letter, retried or deleted meanwhile, is not counted). OutboxError (`ids`) before any SQL on
 * bad input.
 */
export async function discardDeadLetters(sql: postgres.Sql, ids: readonly string[], options: { schema?: string } = {}): Promise<number> {
  const wanted = checkIds(ids);
  if (wanted.length > 10_000) throw new OutboxError('invalid', 'ids', `at most 10000 at once, got ${wanted.length}`);
  const rows = await query(sql, q.discardDeadLetters(options.schema ?? DEFAULT_SCHEMA), { uuids: wanted });
  return rows.length;
}
