/**
 * Erasure requests: deletes what the outbox holds about a user, an automation persona or an organization
 * (the queued events that touched them, each carrying their profile snapshot; the identify rows about them;
 * their dead letters; their remembered profile), in one transaction. PostHog's own copy is erased in PostHog.
 */
import type postgres from 'postgres';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import { OutboxError } from '../errors/errors.ts';
import { query } from '../sql/statement.ts';
import * as q from './forget.sql.ts';

export type EntityKind = 'user' | 'automation' | 'organization';

export interface Forgotten {
  kind: EntityKind;
  id: string;
  /** Queued events and identify rows deleted. */
  queued: number;
  deadLetters: number;
  /** Whether a remembered profile was deleted. */
  profile: boolean;
}

export interface ForgetOptions {
  schema?: string;
  /**
   * Attempts of the whole erasure when PostgreSQL breaks a deadlock or a serialization failure by aborting it
   * (40P01, 40001; nothing was erased). Default 5.
   */
  attempts?: number;
  /** Called before each retry (the attempt that failed, its SQLSTATE, the wait before the next). */
  onRetry?: (info: { attempt: number; code: string; retryInMs: number }) => void;
}

/** A deadlock or a serialization failure: PostgreSQL rolled the transaction back, and the same work may succeed now. */
const RETRYABLE = new Set(['40P01', '40001']);

/** The wait before attempt `attempt + 1`: 50 ms doubling, jittered (so two aborted erasures do not meet again), at most 2 s. */
function retryDelayMs(attempt: number): number {
  return Math.round(Math.min(2_000, 50 * 2 ** (attempt - 1)) * (0.5 + Math.random()));
}

/**
 * Forgets every entity of `targets`, all in one transaction; throws OutboxError (`targets`, `attempts`) before
 * any SQL on bad input. A transaction PostgreSQL aborted to break a deadlock is run again (`attempts`).
 */
export async function forget(sql: postgres.Sql, targets: readonly { kind: EntityKind; id: string }[], options: ForgetOptions = {}): Promise<Forgotten[]> {
  if (targets.length === 0) throw new OutboxError('required', 'targets', 'say whom to forget: a user, automation or organization id');
  targets.forEach(({ kind, id }, i) => {
    if (kind !== 'user' && kind !== 'automation' && kind !== 'organization')
      throw new OutboxError('invalid', `targets[${i}].kind`, `must be user, automation or organization, got ${JSON.stringify(kind)}`);
    if (typeof id !== 'string' || id.trim() === '') throw new OutboxError('invalid', `targets[${i}].id`, 'must not be empty');
  });
  const attempts = options.attempts ?? 5;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100)
    throw new OutboxError('invalid', 'attempts', `must be a whole number from 1 to 100, got ${attempts}`);
  const schema = options.schema ?? DEFAULT_SCHEMA;
  for (let attempt = 1; ; attempt++) {
    try {
      return await forgetOnce(sql, targets, schema);
    } catch (error) {
      const code = (error as { code?: unknown } | undefined)?.code;
      if (typeof code !== 'string' || !RETRYABLE.has(code) || attempt >= attempts) throw error;
      const retryInMs = retryDelayMs(attempt);
      options.onRetry?.({ attempt, code, retryInMs });
      await new Promise((resolve) => setTimeout(resolve, retryInMs));
    }
  }
}

/**
 * One attempt, in one transaction. Its locks are taken in the worker's order, so that a worker settling a
 * batch of the same person cannot deadlock with it: a worker's batch holds its outbox rows (the claim) and
 * then locks `identities` rows (re-identification, in (kind, entity_id) order). So forget deals with every
 * outbox row and dead letter of every target first, and deletes the remembered profiles last, in the same
 * order: while forget waits for a batch's rows it holds no profile that batch will want, and once it locks
 * profiles it waits for no outbox row. (Whatever a statement does to the rows' encoding, this order holds.)
 */
function forgetOnce(sql: postgres.Sql, targets: readonly { kind: EntityKind; id: string }[], schema: string): Promise<Forgotten[]> {
  // Read committed, whatever the server's default: each pass must see what committed before it started.
  return sql.begin('isolation level read committed', async (tx) => {
    const out: Forgotten[] = [];
    for (const { kind, id } of targets) {
      const forgotten: Forgotten = { kind, id, queued: 0, deadLetters: 0, profile: false };
      // Twice. A row a worker holds makes the first pass wait for the worker's batch to commit, and what that
      // batch wrote (a pack split into rows of one event, a row moved to the dead letters) is newer than the
      // first pass's snapshot: the second pass sees it. Rows the first pass changed stay locked by this
      // transaction, so no worker claims them in between.
      for (let pass = 0; pass < 2; pass++) {
        const [row] = await query(tx, q.forgetEntity(schema, kind), { id });
        forgotten.queued += row!.queued;
        forgotten.deadLetters += row!.dead;
      }
      out.push(forgotten);
    }
    const profiles = await query(tx, q.forgetProfiles<EntityKind>(schema), { kinds: targets.map((t) => t.kind), ids: targets.map((t) => t.id) });
    const gone = new Set(profiles.map((p) => `${p.kind}:${p.entity_id}`));
    // (a target named twice: its profile is counted once, for the first, as each target's own pass would)
    for (const forgotten of out) forgotten.profile = gone.delete(`${forgotten.kind}:${forgotten.id}`);
    return out;
  });
}
