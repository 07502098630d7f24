-- The outbox schema, one baseline: the pre-release migrations 0000-0011 squashed (nothing released depended
-- on them). `src/outbox/schema.ts` declares the tables; drizzle-kit generates what changes from here on.
-- Every outbox row is one event, each value in the type the worker settles it as (jsonb, timestamptz), so
-- PostgreSQL refuses at record() what it could not settle later. The handler's insert writes one index entry
-- (the primary key, UUIDv7: write order); only rows that have failed are in `outbox_retry_idx`.
CREATE SCHEMA "posthog_outbox";
--> statement-breakpoint
CREATE TABLE "posthog_outbox"."backfills" (
	"entity" text PRIMARY KEY NOT NULL,
	"query_hash" text NOT NULL,
	"last_id" text,
	"enqueued" integer DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "posthog_outbox"."dead_letters" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"event" text NOT NULL,
	"distinct_id" text NOT NULL,
	"properties" jsonb NOT NULL,
	"groups" jsonb NOT NULL,
	"timestamp" timestamp with time zone NOT NULL,
	"user_id" text,
	"user_profile" jsonb,
	"automation_id" text,
	"automation_profile" jsonb,
	"organization_id" text,
	"organization_profile" jsonb,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"reason" text NOT NULL,
	"died_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "posthog_outbox"."identities" (
	"kind" text NOT NULL,
	"entity_id" text NOT NULL,
	"fields" jsonb NOT NULL,
	"event_at" timestamp with time zone NOT NULL,
	"sent_at" timestamp with time zone DEFAULT now() NOT NULL,
	"version" bigint DEFAULT 1 NOT NULL,
	CONSTRAINT "identities_kind_entity_id_pk" PRIMARY KEY("kind","entity_id")
);
--> statement-breakpoint
CREATE TABLE "posthog_outbox"."outbox" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"event" text NOT NULL,
	"distinct_id" text NOT NULL,
	"properties" jsonb NOT NULL,
	"groups" jsonb NOT NULL,
	"timestamp" timestamp with time zone NOT NULL,
	"user_id" text,
	"user_profile" jsonb,
	"automation_id" text,
	"automation_profile" jsonb,
	"organization_id" text,
	"organization_profile" jsonb,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"rejected_at" timestamp with time zone,
	"identity_kind" text,
	"identity_id" text,
	"identity_version" bigint
);
--> statement-breakpoint
CREATE TABLE "posthog_outbox"."target_health" (
	"id" smallint PRIMARY KEY DEFAULT 1 NOT NULL,
	"failing_since" timestamp with time zone,
	"reason" text,
	"drain_failing_since" timestamp with time zone,
	"drain_error" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "target_health_one_row" CHECK ("posthog_outbox"."target_health"."id" = 1)
);
--> statement-breakpoint
CREATE INDEX "dead_letters_died_at_idx" ON "posthog_outbox"."dead_letters" USING btree ("died_at");--> statement-breakpoint
CREATE INDEX "outbox_retry_idx" ON "posthog_outbox"."outbox" USING btree ("next_attempt_at") WHERE "posthog_outbox"."outbox"."attempts" > 0;
--> statement-breakpoint
-- The outbox is a queue: every row is inserted, claimed and deleted within seconds. With PostgreSQL's defaults
-- a table is vacuumed once 20% of its rows are dead: after a backlog of a million, 200,000 deleted rows would
-- wait for a vacuum while every claim walks their dead index entries. Vacuum after 1% + 1,000 dead rows, with
-- five times the default cost limit so a vacuum keeps pace with the drain, and analyse after 2% so the planner
-- (and /metrics' estimate above 10,000 rows) keeps up.
ALTER TABLE "posthog_outbox"."outbox" SET (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_cost_limit = 1000,
  autovacuum_analyze_scale_factor = 0.02
);
--> statement-breakpoint
-- One readable line per queued event, for operators (`SELECT * FROM posthog_outbox.pending ORDER BY queued_at LIMIT 20`):
-- whether it is due or waiting out a backoff after failed attempts, for how long it has waited, and whom it is about.
CREATE VIEW "posthog_outbox"."pending" AS
SELECT "uuid", "event", "distinct_id",
  CASE WHEN "next_attempt_at" > now() THEN 'waiting to retry' WHEN "attempts" > 0 THEN 'due (retry)' ELSE 'due' END AS "state",
  "attempts", "next_attempt_at", "last_error", "created_at" AS "queued_at", now() - "created_at" AS "waited", "timestamp" AS "event_time",
  "user_id", "organization_id", "automation_id", "identity_kind"
FROM "posthog_outbox"."outbox";
--> statement-breakpoint
-- record() for SQL: triggers, other languages, psql (docs/sql.md). Takes one event as JSON, in the shape
-- record() takes (event, distinctId, properties, groups, timestamp, profiles), checks what src/record/validate.ts
-- checks (jsonb itself refuses a NUL or a lone surrogate, NaN, a cycle), writes the row record() writes and
-- returns its uuid (UUIDv7 on PostgreSQL 18, else random). A refusal raises SQLSTATE 22023 before the insert:
-- its message is record()'s ("<field>: <detail>"), DETAIL its OutboxError code, COLUMN the field. Runs with the
-- caller's rights (INSERT on the outbox) in the caller's transaction, and opens no subtransaction, so a trigger
-- may call it for every row.
CREATE FUNCTION "posthog_outbox"."record"("event" jsonb) RETURNS uuid
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $record$
DECLARE
  code text;
  field text;
  detail text;
  -- the value at fault, described at the end of `detail` when `got` (as src/record/limits.ts describe() does)
  value jsonb;
  got boolean := false;
  properties jsonb;
  groups jsonb;
  profiles jsonb;
  kind text;
  profile jsonb;
  id_fields text[];
  id_values jsonb[];
  ids jsonb := '{}';
  snapshots jsonb := '{}';
  moment timestamptz;
  string text;
  units int;
  id uuid;
  row_json jsonb;
  bytes bigint;
  max_bytes bigint;
BEGIN
  <<checks>>
  BEGIN
    IF jsonb_typeof(event) IS DISTINCT FROM 'object' THEN
      code := 'invalid'; field := 'event'; detail := 'must be a JSON object, got '; value := event; got := true; EXIT checks;
    END IF;
    -- (each check is an expression; a query runs only to name what is at fault, or to walk the groups)
    IF event - ARRAY['event', 'distinctId', 'properties', 'groups', 'timestamp', 'profiles'] <> '{}' THEN
      SELECT 'event.' || k INTO field FROM jsonb_object_keys(event) AS k WHERE k NOT IN ('event', 'distinctId', 'properties', 'groups', 'timestamp', 'profiles') LIMIT 1;
      code := 'invalid'; detail := 'is not a field of an event (event, distinctId, properties, groups, timestamp, profiles)'; EXIT checks;
    END IF;
    -- properties, groups and profiles: absent or null is {}
    properties := coalesce(nullif(event->'properties', 'null'), '{}');
    groups := coalesce(nullif(event->'groups', 'null'), '{}');
    profiles := coalesce(nullif(event->'profiles', 'null'), '{}');
    IF jsonb_typeof(properties) <> 'object' THEN field := 'event.properties'; value := properties;
    ELSIF jsonb_typeof(groups) <> 'object' THEN field := 'event.groups'; value := groups;
    ELSIF jsonb_typeof(profiles) <> 'object' THEN field := 'event.profiles'; value := profiles;
    END IF;
    IF field IS NOT NULL THEN code := 'invalid'; detail := 'must be a JSON object, got '; got := true; EXIT checks; END IF;
    IF profiles - ARRAY['user', 'automation', 'organization'] <> '{}' THEN
      SELECT 'event.profiles.' || k INTO field FROM jsonb_object_keys(profiles) AS k WHERE k NOT IN ('user', 'automation', 'organization') LIMIT 1;
      code := 'invalid'; detail := 'is not a profile (user, automation, organization)'; EXIT checks;
    END IF;
    -- the ids to check (src/record/limits.ts checkId): the event name, the distinct id, the group keys, the profiles' ids
    id_fields := ARRAY['event.event', 'event.distinctId'];
    id_values := ARRAY[event->'event', event->'distinctId'];
    IF groups <> '{}' THEN
      SELECT id_fields || array_agg(CASE WHEN g.key ~ '^[A-Za-z_$][A-Za-z0-9_$]*$' THEN 'event.groups.' || g.key ELSE 'event.groups[' || to_jsonb(g.key)::text || ']' END ORDER BY g.key),
          id_values || array_agg(g.value ORDER BY g.key)
        INTO id_fields, id_values FROM jsonb_each(groups) AS g;
    END IF;
    -- each profile: {id, fields}, fields absent or null is {}; field values are strings, numbers or booleans (the identify's $set)
    FOREACH kind IN ARRAY ARRAY['user', 'automation', 'organization'] LOOP
      profile := profiles->kind;
      CONTINUE WHEN profile IS NULL OR profile = 'null';
      field := 'event.profiles.' || kind;
      IF jsonb_typeof(profile) <> 'object' THEN code := 'invalid'; detail := 'must be a JSON object, got '; value := profile; got := true; EXIT checks; END IF;
      IF profile - ARRAY['id', 'fields'] <> '{}' THEN
        SELECT field || '.' || k INTO field FROM jsonb_object_keys(profile) AS k WHERE k NOT IN ('id', 'fields') LIMIT 1;
        code := 'invalid'; detail := 'is not a field of a profile (id, fields)'; EXIT checks;
      END IF;
      id_fields := id_fields || (field || '.id');
      id_values := id_values || (profile->'id');
      field := field || '.fields';
      value := coalesce(nullif(profile->'fields', 'null'), '{}');
      IF jsonb_typeof(value) <> 'object' THEN code := 'invalid'; detail := 'must be a JSON object, got '; got := true; EXIT checks; END IF;
      IF jsonb_path_exists(value, 'strict $.* ? (@.type() != "string" && @.type() != "number" && @.type() != "boolean")') THEN
        SELECT CASE WHEN f.key ~ '^[A-Za-z_$][A-Za-z0-9_$]*$' THEN field || '.' || f.key ELSE field || '[' || to_jsonb(f.key)::text || ']' END, f.value
          INTO field, value FROM jsonb_each(value) AS f WHERE jsonb_typeof(f.value) NOT IN ('string', 'number', 'boolean') LIMIT 1;
        code := 'invalid'; detail := 'must be a string, finite number or boolean, got '; got := true; EXIT checks;
      END IF;
      ids := ids || jsonb_build_object(kind, profile->'id');
      snapshots := snapshots || jsonb_build_object(kind, value);
    END LOOP;
    FOR i IN 1 .. cardinality(id_fields) LOOP
      field := id_fields[i];
      value := id_values[i];
      IF value IS NULL OR value = 'null' OR value = '""' THEN code := 'required'; detail := 'is required'; EXIT checks; END IF;
      IF jsonb_typeof(value) <> 'string' THEN code := 'invalid'; detail := 'must be a string, got '; got := true; EXIT checks; END IF;
      string := value #>> '{}';
      -- String.prototype.trim()'s white space and line terminators
      IF string ~ '^[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*$' THEN code := 'required'; detail := 'is blank'; EXIT checks; END IF;
      -- the length in UTF-16 code units, as record() counts it: a character beyond U+FFFF counts twice
      units := char_length(string);
      IF units > 94 AND units <= 200 AND octet_length(string) > units THEN
        units := units + char_length(regexp_replace(string, '[^\U00010000-\U0010FFFF]', '', 'g'));
      END IF;
      IF units > 200 THEN code := 'too_long'; detail := 'is ' || units || ' characters; PostHog accepts at most 200'; EXIT checks; END IF;
      IF field = 'event.profiles.automation.id' AND units > 189 THEN
        code := 'too_long'; detail := 'is ' || units || ' characters; the persona''s distinct id "automation_<id>" must fit PostHog''s 200'; EXIT checks;
      END IF;
    END LOOP;
    field := NULL;
    -- the timestamp: absent or null is the time of the call; else a string timestamptz reads, in src/record/limits.ts' range
    value := event->'timestamp';
    IF value IS NOT NULL AND value <> 'null' THEN
      field := 'event.timestamp';
      IF jsonb_typeof(value) <> 'string' THEN code := 'invalid'; detail := 'must be an ISO 8601 string, got '; got := true; EXIT checks; END IF;
      string := value #>> '{}';
      IF current_setting('server_version_num')::int >= 160000 THEN
        IF NOT pg_input_is_valid(string, 'timestamptz') THEN code := 'invalid'; detail := 'must be an ISO 8601 string, got ' || value::text; EXIT checks; END IF;
      END IF;
      moment := string::timestamptz;
      IF NOT moment BETWEEN '1970-01-01T00:00:00Z'::timestamptz AND '9999-12-31T23:59:59.999Z'::timestamptz THEN
        code := 'invalid'; detail := string || ' is outside 1970-01-01..9999-12-31 (UTC)'; EXIT checks;
      END IF;
    END IF;
    -- src/record/validate.ts' MAX_DEPTH: no object or array 64 levels below the properties
    IF jsonb_path_exists(properties, 'strict $.**{64 to last} ? (@.type() == "object" || @.type() == "array")') THEN
      code := 'not_serializable'; field := 'event.properties'; detail := 'is nested deeper than 64 levels'; EXIT checks;
    END IF;
  END checks;
  IF code IS NOT NULL THEN
    IF got THEN
      detail := detail || CASE jsonb_typeof(value) WHEN 'object' THEN 'an object' WHEN 'array' THEN 'an array' WHEN 'string' THEN 'a string'
        WHEN 'boolean' THEN 'a boolean' WHEN 'number' THEN value::text ELSE 'null' END;
    END IF;
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = field || ': ' || detail, DETAIL = code, COLUMN = field;
  END IF;

  IF current_setting('server_version_num')::int >= 180000 THEN id := uuidv7(); ELSE id := gen_random_uuid(); END IF;
  -- JavaScript's Dates, and so record(), keep milliseconds
  moment := date_trunc('milliseconds', coalesce(moment, clock_timestamp()));
  row_json := jsonb_build_object('uuid', id, 'event', event->'event', 'distinct_id', event->'distinctId', 'properties', properties, 'groups', groups,
    'timestamp', moment, 'user_id', ids->'user', 'user_profile', snapshots->'user', 'automation_id', ids->'automation',
    'automation_profile', snapshots->'automation', 'organization_id', ids->'organization', 'organization_profile', snapshots->'organization');
  -- src/record/validate.ts checkSize, on jsonb's text (a space after each ':' and ','): a little stricter than record()
  bytes := octet_length(row_json::text);
  max_bytes := CASE WHEN starts_with(event->>'event', '$ai_') THEN 8 * 1024 * 1024 - 8 * 1024 ELSE 1000000 - 8 * 1024 END;
  IF bytes > max_bytes THEN
    RAISE EXCEPTION USING ERRCODE = '22023', DETAIL = 'too_large', COLUMN = 'event.properties',
      MESSAGE = 'event.properties: the event is ' || bytes || ' bytes; ' || CASE WHEN max_bytes > 1000000
        THEN 'PostHog''s AI endpoint accepts at most ' || max_bytes || ' per $ai_* event'
        ELSE 'PostHog accepts at most ' || max_bytes || ' per event (only $ai_* events may be larger, up to 8380416, through its AI endpoint)' END;
  END IF;
  INSERT INTO "posthog_outbox"."outbox" ("uuid", "event", "distinct_id", "properties", "groups", "timestamp", "user_id", "user_profile",
    "automation_id", "automation_profile", "organization_id", "organization_profile")
  VALUES (id, event->>'event', event->>'distinctId', properties, groups, moment, ids->>'user', snapshots->'user',
    ids->>'automation', snapshots->'automation', ids->>'organization', snapshots->'organization');
  RETURN id;
END
$record$;
--> statement-breakpoint
COMMENT ON FUNCTION "posthog_outbox"."record"(jsonb) IS 'Records one event (JSON: event, distinctId, properties, groups, timestamp, profiles) in the outbox, in the calling transaction, as posthog-outbox''s record() does; returns its uuid. See docs/sql.md in the posthog-outbox package.';
