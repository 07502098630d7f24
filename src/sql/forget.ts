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

/** Deletes the queued events, dead letters and remembered profile of one entity; returns the three counts. */
export function forgetEntity(schema: string, kind: 'user' | 'automation' | 'organization'): string {
  const s = quoteSchema(schema);
  return `WITH queued AS (DELETE FROM ${s}."outbox" WHERE ${touches(kind)} OR ("identity_kind" = '${kind}' AND "identity_id" = $1) RETURNING 1),
dead AS (DELETE FROM ${s}."dead_letters" WHERE ${touches(kind)} RETURNING 1),
known AS (DELETE FROM ${s}."identities" WHERE "kind" = '${kind}' AND "entity_id" = $1 RETURNING 1)
SELECT (SELECT count(*) FROM queued)::int AS "queued", (SELECT count(*) FROM dead)::int AS "dead", (SELECT count(*) FROM known)::int AS "known"`;
}
