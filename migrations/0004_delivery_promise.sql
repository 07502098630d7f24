CREATE TABLE "posthog_outbox"."target_health" (
	"id" smallint PRIMARY KEY DEFAULT 1 NOT NULL,
	"failing_since" timestamp with time zone,
	"reason" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "target_health_one_row" CHECK ("posthog_outbox"."target_health"."id" = 1)
);
--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ADD COLUMN "rejected_at" timestamp with time zone;