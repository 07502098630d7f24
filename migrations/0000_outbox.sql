CREATE SCHEMA "posthog_outbox";
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
	"lease_token" uuid
);
--> statement-breakpoint
CREATE INDEX "dead_letters_died_at_idx" ON "posthog_outbox"."dead_letters" USING btree ("died_at");--> statement-breakpoint
CREATE INDEX "outbox_next_attempt_at_idx" ON "posthog_outbox"."outbox" USING btree ("next_attempt_at");