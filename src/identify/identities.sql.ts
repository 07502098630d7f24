/**
 * Re-identification: the `identities` memory of what PostHog was told about each user, automation persona
 * and organization, and the statements that decide from it which entities to identify again.
 */
import type { ProfileKind } from '../attribution/profiles.ts';
import { quoteSchema, RECORD_COLUMNS } from '../outbox/columns.ts';
import type { ProfileFields } from '../record/event.ts';
import { type Statement, statement, type Values } from '../sql/statement.ts';

/** An entity the memory decided to identify: its merged fields and its new version (bigint: a string). */
export interface Remembered {
  kind: ProfileKind;
  entity_id: string;
  fields: ProfileFields;
  version: string | number;
}

/** What a delivered event leaves to re-identification: its uuid and time, and the entities it touched with their snapshots. */
const SNAPSHOT_COLUMNS = RECORD_COLUMNS.filter(([name]) => !['event', 'distinct_id', 'properties', 'groups'].includes(name));

/**
 * The memory's decision, from a CTE `incoming` of touched entities (`kind`, `entity_id`, `fields` jsonb,
 * `event_at`): `:refreshMs` is the refresh interval in milliseconds, `:force` true to identify every one of
 * them regardless (backfill `--force`). An entity is identified when it is new, when merging its fields (the newer
 * event's values win, never a null) changes what was last sent, or when the last identify is older than the
 * refresh interval. Returns those entities with their merged fields and new version; the others are left
 * untouched. Rows are locked in (kind, id) order, so concurrent batches cannot deadlock; a concurrent batch
 * that already identified the same change makes this one find nothing new.
 */
function rememberFrom<P extends Values>(s: string, incoming: string): Statement<P, Remembered> {
  const merged = (stored: string, incoming: string) =>
    `(CASE WHEN ${incoming}."event_at" >= ${stored}."event_at" THEN ${stored}."fields" || ${incoming}."fields" ELSE ${incoming}."fields" || ${stored}."fields" END)`;
  const due = (stored: string, incoming: string) =>
    `(:force::boolean OR ${stored}."sent_at" <= now() - make_interval(secs => :refreshMs::float8 / 1000) OR ${merged(stored, incoming)} IS DISTINCT FROM ${stored}."fields")`;
  return statement(`WITH ${incoming}, candidates AS (
  SELECT n.* FROM incoming n LEFT JOIN ${s}."identities" i ON i."kind" = n."kind" AND i."entity_id" = n."entity_id"
  WHERE i."kind" IS NULL OR ${due('i', 'n')}
  ORDER BY n."kind" COLLATE "C", n."entity_id" COLLATE "C"
)
INSERT INTO ${s}."identities" AS i ("kind", "entity_id", "fields", "event_at", "sent_at", "version")
SELECT "kind", "entity_id", "fields", "event_at", now(), 1 FROM candidates
ON CONFLICT ("kind", "entity_id") DO UPDATE SET
  "fields" = ${merged('i', 'EXCLUDED')},
  "event_at" = GREATEST(i."event_at", EXCLUDED."event_at"),
  "sent_at" = now(),
  "version" = i."version" + 1
WHERE ${due('i', 'EXCLUDED')}
RETURNING i."kind", i."entity_id", i."fields", i."version"`);
}

/**
 * Remembers what PostHog is told about entities and decides which to identify, atomically (`rememberFrom`):
 * `:incoming` is a JSON array of `{kind, entity_id, fields, event_at}` (the entities, each with its newest
 * fields), `:refreshMs` the refresh interval in milliseconds, `:force` true to identify every one regardless.
 * Used by the backfill.
 */
export function rememberIdentities(schema: string): Statement<{ incoming: string; refreshMs: number; force: boolean }, Remembered> {
  return rememberFrom(
    quoteSchema(schema),
    `incoming AS (
  SELECT * FROM json_to_recordset(:incoming::text::json) AS x("kind" text, "entity_id" text, "fields" jsonb, "event_at" timestamptz)
)`,
  );
}

/**
 * Settles a batch's delivered rows in one statement: deletes rows `:uuids` (held by the calling claim's
 * transaction) and, from the profile snapshots of rows `:read` (some of them), re-identifies what they touched
 * (`rememberFrom`, `:refreshMs` the refresh interval, `:force` false): each user, automation persona and organization
 * once, each field at its newest non-null value (the newest event's, the later-written row on a tie), the
 * entity's time the newest event's. Entities named in `:exclude` (`kind:id`, already identified by this pass)
 * are left out. The other rows are only deleted: the worker passes over the rows whose every entity its
 * run has identified, or looked at with the same snapshot (worker/settle/pass-identities.ts).
 */
export function deleteDeliveredAndRemember(
  schema: string,
): Statement<{ uuids: readonly string[]; refreshMs: number; force: boolean; exclude: readonly string[]; read: readonly string[] }, Remembered> {
  const s = quoteSchema(schema);
  // Kept cheap: entities this pass already identified are dropped first, by a hashed NOT IN; then entities that
  // are settled (fresh, nothing new in any snapshot: most of them once profiles are known), each checked with
  // one jsonb concatenation per row; only the rest are grouped by snapshot and merged field by field. Sorts
  // compare bytes (COLLATE "C").
  const c = (expression: string) => `${expression} COLLATE "C"`;
  return rememberFrom(
    s,
    `deleted AS (
  DELETE FROM ${s}."outbox" WHERE "uuid" = ANY(:uuids::uuid[])
  RETURNING ${SNAPSHOT_COLUMNS.map(([name]) => `"${name}"`).join(', ')}
), gone AS (
  SELECT * FROM deleted WHERE "uuid" = ANY(:read::uuid[])
), touched AS (
  ${(['user', 'automation', 'organization'] as const)
    .map(
      (kind) => `SELECT '${kind}'::text AS "kind", "${kind}_id" AS "entity_id", "${kind}_profile" AS "fields", "timestamp" AS "at", "uuid" FROM gone
  WHERE "${kind}_id" IS NOT NULL AND "${kind}_profile" IS NOT NULL AND '${kind}:' || "${kind}_id" NOT IN (SELECT unnest(:exclude::text[]))`,
    )
    .join('\n  UNION ALL ')}
), judged AS (
  -- An entity is settled when its last identify is fresh and each of its snapshots in the batch only repeats
  -- what was sent (merged in either order, nothing changes): no identify can come of it, so it is not merged.
  -- The common case once profiles are known; the merge below is what this statement spends most on.
  SELECT x.*, max(x."at") OVER w AS "entity_at",
    bool_and(COALESCE(i."sent_at" > now() - make_interval(secs => :refreshMs::float8 / 1000) AND (i."fields" || x."fields") = i."fields", false)) OVER w AS "settled"
  FROM touched x LEFT JOIN ${s}."identities" i ON i."kind" = x."kind" AND i."entity_id" = x."entity_id"
  WINDOW w AS (PARTITION BY ${c('x."kind"')}, ${c('x."entity_id"')})
), snapshots AS (
  SELECT "kind", "entity_id", "fields", max("at") AS "at", max("uuid"::text COLLATE "C") AS "uuid", max("entity_at") AS "entity_at" FROM judged
  WHERE NOT "settled" GROUP BY "kind", "entity_id", "fields"
), newest AS (
  -- Each entity's fields, each at its newest non-null value; an entity with none keeps a row (key null).
  SELECT DISTINCT ON (${c('s."kind"')}, ${c('s."entity_id"')}, ${c('f."key"')}) s."kind", s."entity_id", f."key", f."value", s."entity_at"
  FROM snapshots s
  LEFT JOIN LATERAL jsonb_each(s."fields") AS f("key", "value") ON jsonb_typeof(f."value") <> 'null'
  ORDER BY ${c('s."kind"')}, ${c('s."entity_id"')}, ${c('f."key"')}, s."at" DESC, s."uuid" DESC
), incoming AS (
  SELECT "kind", "entity_id", COALESCE(jsonb_object_agg("key", "value") FILTER (WHERE "key" IS NOT NULL), '{}'::jsonb) AS "fields", max("entity_at") AS "event_at"
  FROM newest GROUP BY "kind", "entity_id"
)`,
  );
}

/** Known entities and the oldest last identify (for `status`). */
export function identitiesStatus(schema: string): Statement<Record<never, never>, { known: number; oldest_sent_at: Date | null }> {
  return statement(`SELECT count(*)::int AS "known", min("sent_at") AS "oldest_sent_at" FROM ${quoteSchema(schema)}."identities"`);
}
