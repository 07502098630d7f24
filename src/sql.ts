/**
 * Every SQL statement the library and the worker run, as plain functions of the schema name, so they can
 * be read and reviewed together. Parameters are positional (`$1`, ...); callers pass them alongside.
 */
import { OutboxError } from './errors.ts';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a Postgres schema name and returns it quoted. */
export function quoteSchema(schema: string): string {
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema)) {
    throw new OutboxError('invalid', 'schema', `must match ${IDENTIFIER} (lower-case letters, digits, underscores), got ${JSON.stringify(schema)}`);
  }
  return `"${schema}"`;
}

/** Columns written by `record()`, with their Postgres types, in the order of the JSON rows. */
export const RECORD_COLUMNS = [
  ['uuid', 'uuid'],
  ['event', 'text'],
  ['distinct_id', 'text'],
  ['properties', 'jsonb'],
  ['groups', 'jsonb'],
  ['timestamp', 'timestamptz'],
  ['user_id', 'text'],
  ['user_profile', 'jsonb'],
  ['automation_id', 'text'],
  ['automation_profile', 'jsonb'],
  ['organization_id', 'text'],
  ['organization_profile', 'jsonb'],
] as const;

export type RecordColumn = (typeof RECORD_COLUMNS)[number][0];

/** The columns the worker adds to the identify rows it writes (the entity and its profile version). */
export const IDENTITY_COLUMNS = [
  ['identity_kind', 'text'],
  ['identity_id', 'text'],
  ['identity_version', 'bigint'],
] as const;

export type IdentityColumn = (typeof IDENTITY_COLUMNS)[number][0];

/**
 * Up to this many events, `insertEvents` takes one text parameter per column (`VALUES`); PostgreSQL then
 * parses each jsonb value once. Above it (the worker's identify rows after a large batch), one parameter
 * holding every row as JSON, which stays under PostgreSQL's 65,535 parameters whatever the count, at the
 * price of parsing the JSON again per column.
 */
export const VALUES_ROWS_LIMIT = 64;

/**
 * Inserts `rows` events in one statement (one round trip). With `VALUES` (`rows` <= VALUES_ROWS_LIMIT) the
 * parameters are the rows' column values in `RECORD_COLUMNS` order (then `IDENTITY_COLUMNS` for the worker's
 * identify rows, `withIdentity`), each as text or null (jsonb as its JSON text); otherwise `$1` is a JSON
 * array of objects keyed by those columns.
 */
export function insertEvents(schema: string, rows: number, withIdentity = false): string {
  const all = withIdentity ? [...RECORD_COLUMNS, ...IDENTITY_COLUMNS] : RECORD_COLUMNS;
  const columns = all.map(([name]) => `"${name}"`).join(', ');
  const into = `INSERT INTO ${quoteSchema(schema)}."outbox" (${columns})`;
  if (rows > VALUES_ROWS_LIMIT) {
    const types = all.map(([name, type]) => `"${name}" ${type}`).join(', ');
    return `${into} SELECT ${columns} FROM json_to_recordset($1::text::json) AS r(${types})`;
  }
  const tuple = (row: number) => `(${all.map(([, type], i) => `$${row * all.length + i + 1}::text${type === 'text' ? '' : `::${type}`}`).join(', ')})`;
  return `${into} VALUES ${Array.from({ length: rows }, (_, row) => tuple(row)).join(', ')}`;
}

// --- migrations ---------------------------------------------------------------------------------------

/** Serialises concurrent `migrate` runs on the same schema (held until the transaction ends). */
export function lockMigrations(): string {
  return `SELECT pg_advisory_xact_lock(hashtext('posthog-outbox:migrate:' || $1::text))`;
}

/** The calling transaction's statements wait at most `$1` milliseconds for a lock (then fail with 55P03). */
export function setLockTimeout(): string {
  return `SELECT set_config('lock_timeout', $1::text, true)`;
}

/** Whether the migrations journal exists yet (`$1` = schema name). */
export function journalExists(): string {
  return `SELECT to_regclass(quote_ident($1::text) || '."__migrations"') IS NOT NULL AS "exists"`;
}

export function createJournal(schema: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteSchema(schema)}."__migrations" ("created_at" bigint PRIMARY KEY, "hash" text NOT NULL, "applied_at" timestamptz NOT NULL DEFAULT now())`;
}

export function appliedMigrations(schema: string): string {
  return `SELECT "created_at", "hash" FROM ${quoteSchema(schema)}."__migrations" ORDER BY "created_at"`;
}

export function insertJournalEntry(schema: string): string {
  return `INSERT INTO ${quoteSchema(schema)}."__migrations" ("hash", "created_at") VALUES ($1, $2)`;
}

// --- delivery (the worker) ----------------------------------------------------------------------------

/** The columns a worker reads from a claimed row: what it sends (profile snapshots stay in the database: `deleteDeliveredAndRemember`). */
const CLAIMED = `o."uuid", o."event", o."distinct_id", o."properties", o."groups", o."timestamp", o."attempts", o."rejected_at"`;

/** `"a", "b", ...` of `RECORD_COLUMNS` (the event as recorded), prefixed by `alias.` if given. */
function recordColumnList(alias?: string): string {
  return RECORD_COLUMNS.map(([name]) => `${alias ? `${alias}.` : ''}"${name}"`).join(', ');
}

/** The columns moved between the outbox and the dead-letter table: the event as recorded, then its delivery history. */
const EVENT_COLUMNS = `${recordColumnList()}, "attempts", "last_error", "created_at"`;

/**
 * Claims up to `$1` due rows, oldest due first, skipping rows other workers hold: the rows stay locked by
 * the claiming transaction until it settles them (delete, retry, dead letter) and commits. The claim
 * writes nothing, so it costs what a plain SELECT costs; a worker that dies holding rows loses them as
 * soon as PostgreSQL sees its connection go, and a hung one when the lease (`setLease`) ends its session.
 * `expired` flags rows recorded more than `$2` milliseconds ago (the maximum age); `superseded` flags identify
 * rows whose entity has been identified again since (a newer profile is queued or sent).
 */
export function claimBatch(schema: string): string {
  const s = quoteSchema(schema);
  return `SELECT ${CLAIMED}, o."created_at" < now() - make_interval(secs => $2::float8 / 1000) AS "expired",
  CASE WHEN o."identity_kind" IS NULL THEN false ELSE COALESCE(o."identity_version" <
    (SELECT i."version" FROM ${s}."identities" i WHERE i."kind" = o."identity_kind" AND i."entity_id" = o."identity_id"), false) END AS "superseded"
FROM ${s}."outbox" o WHERE o."next_attempt_at" <= now() ORDER BY o."next_attempt_at" LIMIT $1 FOR UPDATE SKIP LOCKED`;
}

/**
 * The lease of the calling transaction: PostgreSQL ends the session if it sits idle in the transaction
 * (a request to PostHog outstanding) for more than `$1` milliseconds, which frees the rows it holds.
 */
export function setLease(): string {
  return `SELECT set_config('idle_in_transaction_session_timeout', $1::text, true)`;
}

/**
 * The memory's decision, from a CTE `incoming` of touched entities (`kind`, `entity_id`, `fields` jsonb,
 * `event_at`): `$2` is the refresh interval in milliseconds, `$3` true to identify every one of them
 * regardless (backfill `--force`). An entity is identified when it is new, when merging its fields (the newer
 * event's values win, never a null) changes what was last sent, or when the last identify is older than the
 * refresh interval. Returns those entities with their merged fields and new version; the others are left
 * untouched. Rows are locked in (kind, id) order, so concurrent batches cannot deadlock; a concurrent batch
 * that already identified the same change makes this one find nothing new.
 */
function rememberFrom(s: string, incoming: string): string {
  const merged = (stored: string, incoming: string) =>
    `(CASE WHEN ${incoming}."event_at" >= ${stored}."event_at" THEN ${stored}."fields" || ${incoming}."fields" ELSE ${incoming}."fields" || ${stored}."fields" END)`;
  const due = (stored: string, incoming: string) =>
    `($3::boolean OR ${stored}."sent_at" <= now() - make_interval(secs => $2::float8 / 1000) OR ${merged(stored, incoming)} IS DISTINCT FROM ${stored}."fields")`;
  return `WITH ${incoming}, candidates AS (
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
RETURNING i."kind", i."entity_id", i."fields", i."version"`;
}

/**
 * Remembers what PostHog is told about entities and decides which to identify, atomically (`rememberFrom`):
 * `$1` is a JSON array of `{kind, entity_id, fields, event_at}` (the entities, each with its newest fields),
 * `$2` the refresh interval in milliseconds, `$3` true to identify every one regardless. Used by the backfill.
 */
export function rememberIdentities(schema: string): string {
  return rememberFrom(
    quoteSchema(schema),
    `incoming AS (
  SELECT * FROM json_to_recordset($1::text::json) AS x("kind" text, "entity_id" text, "fields" jsonb, "event_at" timestamptz)
)`,
  );
}

/**
 * Settles a batch's delivered rows in one statement: deletes rows `$1` (held by the calling claim's
 * transaction) and, from the profile snapshots they carried, re-identifies what they touched
 * (`rememberFrom`, `$2` the refresh interval, `$3` false): each user, automation persona and organization
 * once, each field at its newest non-null value (the newest event's, the later-written row on a tie), the
 * entity's time the newest event's. Entities named in `$4` (`kind:id`, already identified by this run) are
 * left out. The snapshots never leave the database: the worker reads only what it sends.
 */
export function deleteDeliveredAndRemember(schema: string): string {
  const s = quoteSchema(schema);
  // Kept cheap: entities this run already identified are dropped first, by a hashed NOT IN; then entities that
  // are settled (fresh, nothing new in any snapshot: most of them once profiles are known), each checked with
  // one jsonb concatenation per row; only the rest are grouped by snapshot and merged field by field. Sorts
  // compare bytes (COLLATE "C").
  const c = (expression: string) => `${expression} COLLATE "C"`;
  return rememberFrom(
    s,
    `gone AS (
  DELETE FROM ${s}."outbox" WHERE "uuid" = ANY($1::uuid[])
  RETURNING "uuid", "timestamp", "user_id", "user_profile", "automation_id", "automation_profile", "organization_id", "organization_profile"
), touched AS (
  ${(['user', 'automation', 'organization'] as const)
    .map(
      (kind) => `SELECT '${kind}'::text AS "kind", "${kind}_id" AS "entity_id", "${kind}_profile" AS "fields", "timestamp" AS "at", "uuid" FROM gone
  WHERE "${kind}_id" IS NOT NULL AND "${kind}_profile" IS NOT NULL AND '${kind}:' || "${kind}_id" NOT IN (SELECT unnest($4::text[]))`,
    )
    .join('\n  UNION ALL ')}
), judged AS (
  -- An entity is settled when its last identify is fresh and each of its snapshots in the batch only repeats
  -- what was sent (merged in either order, nothing changes): no identify can come of it, so it is not merged.
  -- The common case once profiles are known; the merge below is what this statement spends most on.
  SELECT x.*, max(x."at") OVER w AS "entity_at",
    bool_and(COALESCE(i."sent_at" > now() - make_interval(secs => $2::float8 / 1000) AND (i."fields" || x."fields") = i."fields", false)) OVER w AS "settled"
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
export function identitiesStatus(schema: string): string {
  return `SELECT count(*)::int AS "known", min("sent_at") AS "oldest_sent_at" FROM ${quoteSchema(schema)}."identities"`;
}

/** Deletes rows `$1` unsent (held by the calling claim's transaction): identify rows superseded by a newer one. */
export function deleteSuperseded(schema: string): string {
  return `DELETE FROM ${quoteSchema(schema)}."outbox" WHERE "uuid" = ANY($1::uuid[])`;
}

/**
 * Counts a failed attempt of rows `$1` and schedules the next one after `$2` milliseconds each (per row), with
 * the error `$3`; `$4` (per row, null for none) is when PostHog rejected the row's event alone (`rejected_at`).
 */
export function scheduleRetry(schema: string): string {
  const s = quoteSchema(schema);
  return `UPDATE ${s}."outbox" o SET "attempts" = o."attempts" + 1, "next_attempt_at" = now() + make_interval(secs => x.delay_ms / 1000.0), "last_error" = $3,
  "rejected_at" = COALESCE(x.rejected_at, o."rejected_at")
FROM unnest($1::uuid[], $2::float8[], $4::timestamptz[]) AS x("uuid", delay_ms, rejected_at)
WHERE o."uuid" = x."uuid"`;
}

/** Moves rows `$1` to the dead-letter table with the reasons `$2` and attempt counts `$3` (per row), in one statement. */
export function deadLetter(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH dead AS (
  DELETE FROM ${s}."outbox" o USING unnest($1::uuid[], $2::text[], $3::int[]) AS x("uuid", reason, attempts)
  WHERE o."uuid" = x."uuid"
  RETURNING o.*, x.reason, x.attempts AS counted
)
INSERT INTO ${s}."dead_letters" (${EVENT_COLUMNS}, "reason")
SELECT ${recordColumnList()}, counted, "last_error", "created_at", reason FROM dead`;
}

/**
 * PostHog accepts again after failing: rows waiting out a backoff become due now, so a backlog held back by
 * an outage goes out at once rather than over the next backoff interval. Only rows that failed wait, so this
 * touches at most the batches tried during the outage.
 */
export function resumeWaitingRows(schema: string): string {
  return `UPDATE ${quoteSchema(schema)}."outbox" SET "next_attempt_at" = now() WHERE "next_attempt_at" > now()`;
}

/** The target is failing since now (or since earlier, if it already was) for reason `$1`. */
export function markTargetFailing(schema: string): string {
  return `INSERT INTO ${quoteSchema(schema)}."target_health" AS t ("id", "failing_since", "reason", "updated_at") VALUES (1, now(), $1, now())
ON CONFLICT ("id") DO UPDATE SET "failing_since" = COALESCE(t."failing_since", now()), "reason" = $1, "updated_at" = now()`;
}

/** PostHog accepted events: the target works. */
export function markTargetWorking(schema: string): string {
  return `INSERT INTO ${quoteSchema(schema)}."target_health" AS t ("id", "failing_since", "reason", "updated_at") VALUES (1, NULL, NULL, now())
ON CONFLICT ("id") DO UPDATE SET "failing_since" = NULL, "reason" = NULL, "updated_at" = now()`;
}

/** The target's state as last written (no row: no worker has reported yet). */
export function targetHealth(schema: string): string {
  return `SELECT "failing_since", "reason", "updated_at" FROM ${quoteSchema(schema)}."target_health" WHERE "id" = 1`;
}

/** Whether the outbox table `$1` (`schema.outbox`) and pg-boss's schema `$2` exist: the worker's start-up check. */
export function installed(): string {
  return `SELECT to_regclass($1) IS NOT NULL AND to_regnamespace($2) IS NOT NULL AS ok`;
}

/** The database answers (connection checks, `/healthz`). */
export function ping(): string {
  return 'SELECT 1';
}

/** Whether any row is due: the idle worker's probe (one index lookup on `next_attempt_at`). */
export function anyDue(schema: string): string {
  return `SELECT EXISTS (SELECT 1 FROM ${quoteSchema(schema)}."outbox" WHERE "next_attempt_at" <= now()) AS "due"`;
}

/** When the next row becomes due (null when the outbox is empty). */
export function nextDue(schema: string): string {
  return `SELECT min("next_attempt_at") AS "at" FROM ${quoteSchema(schema)}."outbox"`;
}

// --- operator commands: status and dead letters --------------------------------------------------------

/** One row: backlog, rows due now (those being sent included), rows waiting for a retry, the oldest row's age. */
export function outboxStatus(schema: string): string {
  return `SELECT count(*)::int AS "backlog",
  count(*) FILTER (WHERE "next_attempt_at" <= now())::int AS "due",
  count(*) FILTER (WHERE "next_attempt_at" > now())::int AS "retrying",
  (extract(epoch FROM now() - min("created_at")) * 1000)::float8 AS "oldest_age_ms",
  min("next_attempt_at") FILTER (WHERE "next_attempt_at" > now()) AS "next_retry_at"
FROM ${quoteSchema(schema)}."outbox"`;
}

/** Up to `$1` rows waiting for a retry after a failed attempt, soonest first. */
export function retryingRows(schema: string): string {
  return `SELECT "uuid", "event", "distinct_id", "attempts", "next_attempt_at", "last_error" FROM ${quoteSchema(schema)}."outbox"
WHERE "next_attempt_at" > now()
ORDER BY "next_attempt_at" LIMIT $1`;
}

/** Dead letters grouped by reason, most frequent first. */
export function deadLettersByReason(schema: string): string {
  return `SELECT "reason", count(*)::int AS "count", max("died_at") AS "last_died_at" FROM ${quoteSchema(schema)}."dead_letters"
GROUP BY "reason" ORDER BY count(*) DESC, "reason" LIMIT 100`;
}

/** Up to `$1` dead letters, newest first. */
export function listDeadLetters(schema: string): string {
  return `SELECT "uuid", "event", "distinct_id", "reason", "attempts", "died_at" FROM ${quoteSchema(schema)}."dead_letters"
ORDER BY "died_at" DESC, "uuid" LIMIT $1`;
}

/**
 * Moves dead letters back into the outbox with their attempts reset, due now: those with uuid in `$1`, or
 * all of them when `$1` is null. Keeps the uuid and timestamp, so PostHog can still drop a duplicate.
 */
export function retryDeadLetters(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH revived AS (
  DELETE FROM ${s}."dead_letters" WHERE $1::uuid[] IS NULL OR "uuid" = ANY($1::uuid[])
  RETURNING *
)
INSERT INTO ${s}."outbox" (${EVENT_COLUMNS}, "next_attempt_at")
SELECT ${recordColumnList()}, 0, NULL, "created_at", now()
FROM revived
ON CONFLICT ("uuid") DO NOTHING
RETURNING "uuid"`;
}

/**
 * Deletes dead letters that died more than `$1` milliseconds ago, at most `$2` of them (a bounded statement:
 * the worker calls it again while it returns a full count). Returns how many.
 */
export function expireDeadLetters(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH gone AS (
  DELETE FROM ${s}."dead_letters" WHERE "uuid" IN (
    SELECT "uuid" FROM ${s}."dead_letters" WHERE "died_at" < now() - make_interval(secs => $1::float8 / 1000) LIMIT $2)
  RETURNING 1
) SELECT count(*)::int AS "count" FROM gone`;
}

// --- forget (erasure requests) -----------------------------------------------------------------------------
// `$1` is the entity's id. A person's data is in the events that touched them (their profile snapshot rides
// along), in identify rows about them, and in the identities memory.

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

/** How many dead letters died before `$1`. */
export function countDeadLettersBefore(schema: string): string {
  return `SELECT count(*)::int AS "count" FROM ${quoteSchema(schema)}."dead_letters" WHERE "died_at" < $1::timestamptz`;
}

/** Deletes the dead letters that died before `$1`; returns how many. */
export function purgeDeadLetters(schema: string): string {
  return `WITH gone AS (DELETE FROM ${quoteSchema(schema)}."dead_letters" WHERE "died_at" < $1::timestamptz RETURNING 1) SELECT count(*)::int AS "count" FROM gone`;
}

// --- backfill-profiles --------------------------------------------------------------------------------
// `$query` is the operator's own SELECT (from their config), wrapped as a subquery; it must return `id`.
// Each statement that embeds it takes a parameter, so it always goes through the extended protocol (one
// statement: a `;` cannot smuggle in a second), and runs in a READ ONLY transaction (`readOnlyQueries`).

/** One backfill at a time per schema (session-level lock, held by the backfill's reserved connection). */
export function tryLockBackfill(): string {
  return `SELECT pg_try_advisory_lock(hashtext('posthog-outbox:backfill:' || $1::text)) AS "locked"`;
}

export function unlockBackfill(): string {
  return `SELECT pg_advisory_unlock(hashtext('posthog-outbox:backfill:' || $1::text))`;
}

/** The Postgres type of the query's `id` column (for keyset paging on its own ordering and index). */
export function profileIdType(query: string): string {
  return `SELECT pg_typeof(q."id")::text AS "type" FROM (${query}) AS q LIMIT $1`;
}

/** How many rows the query returns (`$1`: true; a parameter so that it is one extended-protocol statement). */
export function countProfiles(query: string): string {
  return `SELECT count(*)::int AS "count" FROM (${query}) AS q WHERE $1::boolean`;
}

/** Opens the operator queries' transaction: read only, each statement limited to `$1` milliseconds. */
export function readOnlyQueries(): string {
  return `SELECT set_config('transaction_read_only', 'on', true), set_config('statement_timeout', $1::text, true)`;
}

/** The next `$2` rows after id `$1` (null: from the start), in id order. */
export function profilesPage(query: string, idType: string): string {
  if (!/^[a-z][a-z0-9_ ]*(\([0-9, ]+\))?$/i.test(idType)) throw new Error(`unsupported id type ${JSON.stringify(idType)}`);
  return `SELECT * FROM (${query}) AS q WHERE $1::text IS NULL OR q."id" > $1::text::${idType} ORDER BY q."id" LIMIT $2`;
}

export function backfillState(schema: string): string {
  return `SELECT "query_hash", "last_id", "enqueued", "started_at", "finished_at" FROM ${quoteSchema(schema)}."backfills" WHERE "entity" = $1`;
}

/** Starts a new pass for entity `$1` with query hash `$2`. */
export function startBackfill(schema: string): string {
  return `INSERT INTO ${quoteSchema(schema)}."backfills" ("entity", "query_hash") VALUES ($1, $2)
ON CONFLICT ("entity") DO UPDATE SET "query_hash" = EXCLUDED."query_hash", "last_id" = NULL, "enqueued" = 0, "started_at" = now(), "finished_at" = NULL`;
}

/** Records a page: position `$2`, `$3` more enqueued (in the transaction that enqueued them). */
export function advanceBackfill(schema: string): string {
  return `UPDATE ${quoteSchema(schema)}."backfills" SET "last_id" = $2, "enqueued" = "enqueued" + $3 WHERE "entity" = $1`;
}

export function finishBackfill(schema: string): string {
  return `UPDATE ${quoteSchema(schema)}."backfills" SET "finished_at" = now() WHERE "entity" = $1`;
}

// --- sessions (is this connection behind a transaction pooler?) ----------------------------------------

/** The server process serving this statement: one per session on a direct or session-pooled connection. */
export function backendPid(): string {
  return `SELECT pg_backend_pid() AS "pid"`;
}

// --- bounded reads and writes for big backlogs ------------------------------------------------------------

/**
 * How many rows `table` holds, counted only up to `$1` (reads at most `$1` rows); with the planner's
 * estimate (`pg_class.reltuples`, as of the last VACUUM or ANALYZE; -1 when never analysed) for above it.
 */
export function cappedCount(schema: string, table: 'outbox' | 'dead_letters'): string {
  const s = quoteSchema(schema);
  return `SELECT (SELECT count(*) FROM (SELECT 1 FROM ${s}."${table}" LIMIT $1) AS capped)::int AS "counted",
  (SELECT reltuples FROM pg_class WHERE oid = '${s}."${table}"'::regclass)::float8 AS "estimate"`;
}

/**
 * Age in milliseconds of the oldest queued event (null when empty): the lowest uuid, since event uuids are
 * UUIDv7 assigned at write time, so this is one primary-key index lookup instead of a scan of `created_at`.
 */
export function oldestEventAge(schema: string): string {
  return `SELECT (extract(epoch FROM now() - "created_at") * 1000)::float8 AS "age_ms" FROM ${quoteSchema(schema)}."outbox" ORDER BY "uuid" LIMIT 1`;
}

/**
 * One bounded step of `dead-letters retry --all`: moves up to `$1` dead letters with uuid after `$2` (null:
 * from the first), in uuid order, back into the outbox (as `retryDeadLetters` does). Returns how many were
 * taken, how many were queued (a uuid already queued is not queued twice) and the last uuid taken.
 */
export function retryDeadLettersBatch(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH picked AS (
  SELECT "uuid" FROM ${s}."dead_letters" WHERE $2::uuid IS NULL OR "uuid" > $2::uuid ORDER BY "uuid" LIMIT $1
), revived AS (
  DELETE FROM ${s}."dead_letters" d USING picked p WHERE d."uuid" = p."uuid" RETURNING d.*
), queued AS (
  INSERT INTO ${s}."outbox" (${EVENT_COLUMNS}, "next_attempt_at")
  SELECT ${recordColumnList()}, 0, NULL, "created_at", now()
  FROM revived
  ON CONFLICT ("uuid") DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM revived)::int AS "taken", (SELECT count(*) FROM queued)::int AS "queued", (SELECT max("uuid"::text) FROM revived) AS "last"`;
}

/** How many dead letters there are (one scan: for an operator's command, not for every scrape). */
export function countDeadLetters(schema: string): string {
  return `SELECT count(*)::int AS "total" FROM ${quoteSchema(schema)}."dead_letters"`;
}
