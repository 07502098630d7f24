/**
 * `forget` (erasure requests). `:id` is the entity's id. A person's data is in the events that touched them
 * (their profile snapshot rides along), in identify rows about them, and in the identities memory.
 */
import { quoteSchema } from '../outbox/columns.ts';
import { type Statement, statement } from '../sql/statement.ts';

/** What an entity kind matches on, in `outbox` and `dead_letters` rows (`:id`). */
function touches(kind: 'user' | 'automation' | 'organization'): string {
  switch (kind) {
    case 'user':
      return `("user_id" = :id OR "distinct_id" = :id)`;
    case 'automation':
      return `("automation_id" = :id OR "distinct_id" = 'automation_' || :id)`;
    case 'organization':
      return `("organization_id" = :id OR ("event" = '$groupidentify' AND "properties"->>'$group_key' = :id))`;
  }
}

/**
 * Deletes the queued events and dead letters of one entity; returns the two counts (its remembered profile
 * is `forgetProfiles`, afterwards).
 */
export function forgetEntity(schema: string, kind: 'user' | 'automation' | 'organization'): Statement<{ id: string }, { queued: number; dead: number }> {
  const s = quoteSchema(schema);
  return statement(`WITH queued AS (DELETE FROM ${s}."outbox" WHERE ${touches(kind)} OR ("identity_kind" = '${kind}' AND "identity_id" = :id) RETURNING 1),
dead AS (DELETE FROM ${s}."dead_letters" WHERE ${touches(kind)} RETURNING 1)
SELECT (SELECT count(*) FROM queued)::int AS "queued", (SELECT count(*) FROM dead)::int AS "dead"`);
}

/**
 * Deletes the remembered profiles of entities `:kinds` / `:ids`, locking them first in (kind,
 * entity_id) byte order, the order a worker's re-identification locks them in; returns the deleted keys.
 * Run after every outbox row of the entities is dealt with (src/ops/forget.ts says why).
 */
export function forgetProfiles<K extends string>(schema: string): Statement<{ kinds: readonly K[]; ids: readonly string[] }, { kind: K; entity_id: string }> {
  const s = quoteSchema(schema);
  return statement(`WITH locked AS (
  SELECT i."kind", i."entity_id" FROM ${s}."identities" i JOIN unnest(:kinds::text[], :ids::text[]) AS t("kind", "entity_id") USING ("kind", "entity_id")
  ORDER BY i."kind" COLLATE "C", i."entity_id" COLLATE "C"
  FOR UPDATE OF i
)
DELETE FROM ${s}."identities" i USING locked l WHERE i."kind" = l."kind" AND i."entity_id" = l."entity_id"
RETURNING i."kind", i."entity_id"`);
}
