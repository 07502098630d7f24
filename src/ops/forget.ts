/**
 * Erasure requests: deletes what the outbox holds about a user, an automation persona or an organization
 * (the queued events that touched them, each carrying their profile snapshot; the identify rows about them;
 * their dead letters; their remembered profile), in one transaction. PostHog's own copy is erased in PostHog.
 */
import type postgres from 'postgres';
import { DEFAULT_SCHEMA } from '../config.ts';
import { OutboxError } from '../errors.ts';
import * as q from '../sql/index.ts';

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

/** Forgets every entity of `targets`, all in one transaction; throws OutboxError (`targets`) before any SQL on bad input. */
export async function forget(sql: postgres.Sql, targets: readonly { kind: EntityKind; id: string }[], options: { schema?: string } = {}): Promise<Forgotten[]> {
  if (targets.length === 0) throw new OutboxError('required', 'targets', 'say whom to forget: a user, automation or organization id');
  targets.forEach(({ kind, id }, i) => {
    if (kind !== 'user' && kind !== 'automation' && kind !== 'organization')
      throw new OutboxError('invalid', `targets[${i}].kind`, `must be user, automation or organization, got ${JSON.stringify(kind)}`);
    if (typeof id !== 'string' || id.trim() === '') throw new OutboxError('invalid', `targets[${i}].id`, 'must not be empty');
  });
  const schema = options.schema ?? DEFAULT_SCHEMA;
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
        const [row] = await tx.unsafe<{ queued: number; dead: number; known: number }[]>(q.forgetEntity(schema, kind), [id]);
        forgotten.queued += row!.queued;
        forgotten.deadLetters += row!.dead;
        forgotten.profile ||= row!.known > 0;
      }
      out.push(forgotten);
    }
    return out;
  });
}
