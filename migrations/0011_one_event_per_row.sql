-- One encoding: every outbox row is one event, its values in the types the worker settles them as (jsonb,
-- timestamptz), so PostgreSQL itself refuses at record() what it could not settle later. Packs (0008: several
-- events of one record() call in one `json` row) are gone: `json` took values that jsonb refuses (a NUL, a lone
-- surrogate), which then failed every settle of their batch, and a claim sized by rows read packs of many
-- events at once. Measured before dropping them (durable PostgreSQL, 16 connections, handler + outbox insert,
-- share of the bare handler's commits/s): 1 event 0.78x as a pack, 0.78x as a row; 5 events of one call 0.70x
-- as a pack, 0.59x as five rows.
--
-- Each queued pack becomes rows of one event each, keeping the pack's delivery history. A pack holding a value
-- these types refuse (or not an array of objects) is moved to dead_letters whole, as its JSON text under
-- properties.pack, with the database's reason. A row that is neither an event nor a pack (edited by hand) is
-- dead-lettered too. SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock (inserts wait for it):
-- migrate once the outbox has drained. target_health gains where workers say that their drain runs fail (the
-- database refused to settle a batch, or anything but PostHog), for `status`.
DO $$
DECLARE
  p record;
BEGIN
  BEGIN
    INSERT INTO "posthog_outbox"."outbox" ("uuid", "event", "distinct_id", "properties", "groups", "timestamp", "user_id", "user_profile", "automation_id", "automation_profile", "organization_id", "organization_profile", "attempts", "last_error", "created_at", "next_attempt_at", "rejected_at")
      SELECT COALESCE(e."uuid", gen_random_uuid()), COALESCE(e."event", ''), COALESCE(e."distinct_id", ''), COALESCE(e."properties", '{}'), COALESCE(e."groups", '{}'),
        COALESCE(e."timestamp", o."created_at"), e."user_id", e."user_profile", e."automation_id", e."automation_profile", e."organization_id", e."organization_profile",
        o."attempts", o."last_error", o."created_at", o."next_attempt_at", o."rejected_at"
      FROM "posthog_outbox"."outbox" o CROSS JOIN LATERAL json_to_recordset(o."events") AS e("uuid" uuid, "event" text, "distinct_id" text, "properties" jsonb, "groups" jsonb, "timestamp" timestamptz, "user_id" text, "user_profile" jsonb, "automation_id" text, "automation_profile" jsonb, "organization_id" text, "organization_profile" jsonb)
      WHERE o."events" IS NOT NULL
      ON CONFLICT ("uuid") DO NOTHING;
  EXCEPTION WHEN others THEN
    -- Some pack cannot be converted: pack by pack, each that fails dead-lettered whole.
    FOR p IN SELECT "uuid" FROM "posthog_outbox"."outbox" WHERE "events" IS NOT NULL LOOP
      BEGIN
        INSERT INTO "posthog_outbox"."outbox" ("uuid", "event", "distinct_id", "properties", "groups", "timestamp", "user_id", "user_profile", "automation_id", "automation_profile", "organization_id", "organization_profile", "attempts", "last_error", "created_at", "next_attempt_at", "rejected_at")
          SELECT COALESCE(e."uuid", gen_random_uuid()), COALESCE(e."event", ''), COALESCE(e."distinct_id", ''), COALESCE(e."properties", '{}'), COALESCE(e."groups", '{}'),
        COALESCE(e."timestamp", o."created_at"), e."user_id", e."user_profile", e."automation_id", e."automation_profile", e."organization_id", e."organization_profile",
        o."attempts", o."last_error", o."created_at", o."next_attempt_at", o."rejected_at"
          FROM "posthog_outbox"."outbox" o CROSS JOIN LATERAL json_to_recordset(o."events") AS e("uuid" uuid, "event" text, "distinct_id" text, "properties" jsonb, "groups" jsonb, "timestamp" timestamptz, "user_id" text, "user_profile" jsonb, "automation_id" text, "automation_profile" jsonb, "organization_id" text, "organization_profile" jsonb)
          WHERE o."uuid" = p."uuid"
          ON CONFLICT ("uuid") DO NOTHING;
      EXCEPTION WHEN others THEN
        INSERT INTO "posthog_outbox"."dead_letters" ("uuid", "event", "distinct_id", "properties", "groups", "timestamp", "attempts", "last_error", "created_at", "reason")
          SELECT o."uuid", '(pack)', '', jsonb_build_object('pack', o."events"::text), '{}', o."created_at", o."attempts", o."last_error", o."created_at",
            'migration 0011: a queued pack holds a value PostgreSQL cannot store as jsonb/timestamptz, not sent: ' || SQLERRM
          FROM "posthog_outbox"."outbox" o WHERE o."uuid" = p."uuid"
          ON CONFLICT ("uuid") DO NOTHING;
      END;
    END LOOP;
  END;
  DELETE FROM "posthog_outbox"."outbox" WHERE "events" IS NOT NULL;
  WITH neither AS (
    DELETE FROM "posthog_outbox"."outbox"
    WHERE "event" IS NULL OR "distinct_id" IS NULL OR "properties" IS NULL OR "groups" IS NULL OR "timestamp" IS NULL
    RETURNING *
  )
  INSERT INTO "posthog_outbox"."dead_letters" ("uuid", "event", "distinct_id", "properties", "groups", "timestamp", "attempts", "last_error", "created_at", "reason")
    SELECT "uuid", COALESCE("event", ''), COALESCE("distinct_id", ''), COALESCE("properties", '{}'), COALESCE("groups", '{}'), COALESCE("timestamp", "created_at"),
      "attempts", "last_error", "created_at", 'migration 0011: a queued row held neither one event nor a pack, not sent'
    FROM neither
    ON CONFLICT ("uuid") DO NOTHING;
END $$;
--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ALTER COLUMN "event" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ALTER COLUMN "distinct_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ALTER COLUMN "properties" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ALTER COLUMN "groups" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ALTER COLUMN "timestamp" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."target_health" ADD COLUMN "drain_failing_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."target_health" ADD COLUMN "drain_error" text;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" DROP COLUMN "events";--> statement-breakpoint
-- One readable line per queued event, for operators (`SELECT * FROM posthog_outbox.pending ORDER BY queued_at LIMIT 20`):
-- whether it is due or waiting out a backoff after failed attempts, for how long it has waited, and whom it is about.
CREATE VIEW "posthog_outbox"."pending" AS
SELECT "uuid", "event", "distinct_id",
  CASE WHEN "next_attempt_at" > now() THEN 'waiting to retry' WHEN "attempts" > 0 THEN 'due (retry)' ELSE 'due' END AS "state",
  "attempts", "next_attempt_at", "last_error", "created_at" AS "queued_at", now() - "created_at" AS "waited", "timestamp" AS "event_time",
  "user_id", "organization_id", "automation_id", "identity_kind"
FROM "posthog_outbox"."outbox";
