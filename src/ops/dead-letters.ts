/** Events that were given up on: list them, move them back into the outbox, or delete them. */
import type postgres from 'postgres';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import { OutboxError } from '../errors/errors.ts';
import { query } from '../sql/statement.ts';
import * as q from './dead-letters.sql.ts';
import type { DeadLetterRow } from './dead-letters.sql.ts';

export interface DeadLetter {
  uuid: string;
  event: string;
  distinctId: string;
  attempts: number;
  diedAt: string;
  reason: string;
}

/** Up to `limit` dead letters (default 50), newest first. */
export async function listDeadLetters(sql: postgres.Sql, options: { schema?: string; limit?: number } = {}): Promise<DeadLetter[]> {
  const rows = await query(sql, q.listDeadLetters(options.schema ?? DEFAULT_SCHEMA), { limit: options.limit ?? 50 });
  return rows.map(deadLetterOf);
}

/** A dead letter as the operations give it, from its row. */
export function deadLetterOf(r: DeadLetterRow): DeadLetter {
  return { uuid: r.uuid, event: r.event, distinctId: r.distinct_id, attempts: r.attempts, diedAt: r.died_at.toISOString(), reason: r.reason };
}

/**
 * Moves the dead letters `ids` back into the outbox, attempts reset, due now (same uuid and timestamp), all or
 * nothing: an id that is not a dead letter throws OutboxError (`ids`) and moves nothing. Returns how many moved.
 */
export async function retryDeadLetters(sql: postgres.Sql, ids: readonly string[], options: { schema?: string } = {}): Promise<number> {
  const wanted = [...new Set(ids.map((id) => id.toLowerCase()))];
  if (wanted.length === 0) throw new OutboxError('required', 'ids', 'give the uuid of at least one dead letter');
  return sql.begin(async (tx) => {
    const rows = await query(tx, q.retryDeadLetters(options.schema ?? DEFAULT_SCHEMA), { uuids: wanted });
    const missing = wanted.filter((id) => !rows.some((r) => r.uuid === id));
    if (missing.length > 0) throw new OutboxError('invalid', 'ids', `no dead letter with uuid ${missing.join(', ')}; nothing was moved`);
    return rows.length;
  });
}

/**
 * Every dead letter back into the outbox, in transactions of `batchSize` (default 10,000) in uuid order, so a
 * million dead letters never become one statement holding a million row locks. `onProgress` hears how far it
 * got after each batch; interrupted, it can simply be run again. Returns how many were queued again.
 */
export async function retryAllDeadLetters(
  sql: postgres.Sql,
  options: { schema?: string; batchSize?: number; onProgress?: (progress: { done: number; total: number; queued: number }) => void } = {},
): Promise<number> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const batchSize = options.batchSize ?? 10_000;
  const [{ total } = { total: 0 }] = await query(sql, q.countDeadLetters(schema));
  let last: string | null = null;
  let queued = 0;
  let done = 0;
  for (;;) {
    const step: { taken: number; queued: number; last: string | null } = (
      await query(sql, q.retryDeadLettersBatch(schema), { limit: batchSize, after: last })
    )[0]!;
    done += step.taken;
    queued += step.queued;
    options.onProgress?.({ done, total, queued });
    if (step.taken < batchSize || step.last === null) return queued;
    last = step.last;
  }
}

/** How many dead letters died before `before`. */
export async function countDeadLettersBefore(sql: postgres.Sql, before: Date, options: { schema?: string } = {}): Promise<number> {
  const [{ count } = { count: 0 }] = await query(sql, q.countDeadLettersBefore(options.schema ?? DEFAULT_SCHEMA), { before: before.toISOString() });
  return count;
}

/** Deletes the dead letters that died before `before`; returns how many. */
export async function purgeDeadLetters(sql: postgres.Sql, before: Date, options: { schema?: string } = {}): Promise<number> {
  const [{ count } = { count: 0 }] = await query(sql, q.purgeDeadLetters(options.schema ?? DEFAULT_SCHEMA), { before: before.toISOString() });
  return count;
}
