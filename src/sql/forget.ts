/**
 * `forget` (erasure requests). `$1` is the entity's id. A person's data is in the events that touched them
 * (their profile snapshot rides along), in identify rows about them, and in the identities memory.
 */
import { quoteSchema } from './columns.ts';

/**
 * What an entity kind matches on, in `outbox` and `dead_letters` rows (`$1` = id); `field(name)` reads a
 * field as text (a column, or a key of a pack's event).
 */
function touches(kind: 'user' | 'automation' | 'organization', field: (name: string) => string = (name) => `"${name}"`): string {
  switch (kind) {
    case 'user':
      return `(${field('user_id')} = $1 OR ${field('distinct_id')} = $1)`;
    case 'automation':
      return `(${field('automation_id')} = $1 OR ${field('distinct_id')} = 'automation_' || $1)`;
    case 'organization':
      return `(${field('organization_id')} = $1 OR (${field('event')} = '$groupidentify' AND ${field('properties')}::json->>'$group_key' = $1))`;
  }
}

/**
 * Deletes the queued events and dead letters of one entity; returns the two counts (its remembered profile
 * is `forgetProfiles`, afterwards).
 * A pack (several events of one `record()` call) loses the entity's events and keeps the others; a pack left
 * with none is deleted.
 */
export function forgetEntity(schema: string, kind: 'user' | 'automation' | 'organization'): string {
  const s = quoteSchema(schema);
  const inPack = (name: string) => (name === 'properties' ? `(e."value"->'properties')::text` : `(e."value"->>'${name}')`);
  return `WITH queued AS (DELETE FROM ${s}."outbox" WHERE "events" IS NULL AND (${touches(kind)} OR ("identity_kind" = '${kind}' AND "identity_id" = $1)) RETURNING 1),
packs AS (
  SELECT o."uuid", count(*) FILTER (WHERE e."touched") AS "gone", json_agg(e."value" ORDER BY e."n") FILTER (WHERE NOT e."touched") AS "kept"
  FROM ${s}."outbox" o CROSS JOIN LATERAL (
    SELECT e."value", e."n", COALESCE(${touches(kind, inPack)}, false) AS "touched"
    FROM json_array_elements(CASE WHEN json_typeof(o."events") = 'array' THEN o."events" ELSE '[]' END) WITH ORDINALITY AS e("value", "n")
  ) e
  WHERE o."events" IS NOT NULL GROUP BY o."uuid"
),
emptied AS (DELETE FROM ${s}."outbox" o USING packs p WHERE o."uuid" = p."uuid" AND p."gone" > 0 AND p."kept" IS NULL RETURNING p."gone"),
thinned AS (UPDATE ${s}."outbox" o SET "events" = p."kept" FROM packs p WHERE o."uuid" = p."uuid" AND p."gone" > 0 AND p."kept" IS NOT NULL RETURNING p."gone"),
dead AS (DELETE FROM ${s}."dead_letters" WHERE ${touches(kind)} RETURNING 1)
SELECT ((SELECT count(*) FROM queued) + (SELECT COALESCE(sum("gone"), 0) FROM emptied) + (SELECT COALESCE(sum("gone"), 0) FROM thinned))::int AS "queued",
  (SELECT count(*) FROM dead)::int AS "dead"`;
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
