/**
 * `forget` (erasure requests). `$1` is the entity's id. A person's data is in the events that touched them
 * (their profile snapshot rides along), in identify rows about them, and in the identities memory.
 */
import { quoteSchema } from './columns.ts';

/** What an entity kind matches on, in `outbox` and `dead_letters` rows (`$1` = id). */
function touches(kind: 'user' | 'automation' | 'organization'): string {
  switch (kind) {
    case 'user':
      return `("user_id" = $1 OR "distinct_id" = $1)`;
    case 'automation':
      return `("automation_id" = $1 OR "distinct_id" = 'automation_' || $1)`;
    case 'organization':
      return `("organization_id" = $1 OR ("event" = '$groupidentify' AND "properties"->>'$group_key' = $1))`;
  }
}

/**
 * Deletes the queued events and dead letters of one entity; returns the two counts (its remembered profile
 * is `forgetProfiles`, afterwards).
 */
export function forgetEntity(schema: string, kind: 'user' | 'automation' | 'organization'): string {
  const s = quoteSchema(schema);
  return `WITH queued AS (DELETE FROM ${s}."outbox" WHERE ${touches(kind)} OR ("identity_kind" = '${kind}' AND "identity_id" = $1) RETURNING 1),
dead AS (DELETE FROM ${s}."dead_letters" WHERE ${touches(kind)} RETURNING 1)
SELECT (SELECT count(*) FROM queued)::int AS "queued", (SELECT count(*) FROM dead)::int AS "dead"`;
}

/**
 * Deletes the remembered profiles of entities `$1` (kinds) / `$2` (ids), locking them first in (kind,
 * entity_id) byte order, the order a worker's re-identification locks them in; returns the deleted keys.
 * Run after every outbox row of the entities is dealt with (src/ops/forget.ts says why).
 */
export function forgetProfiles(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH locked AS (
  SELECT i."kind", i."entity_id" FROM ${s}."identities" i JOIN unnest($1::text[], $2::text[]) AS t("kind", "entity_id") USING ("kind", "entity_id")
  ORDER BY i."kind" COLLATE "C", i."entity_id" COLLATE "C"
  FOR UPDATE OF i
)
DELETE FROM ${s}."identities" i USING locked l WHERE i."kind" = l."kind" AND i."entity_id" = l."entity_id"
RETURNING i."kind", i."entity_id"`;
}
