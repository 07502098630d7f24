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
