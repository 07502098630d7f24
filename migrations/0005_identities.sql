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
ALTER TABLE "posthog_outbox"."outbox" ADD COLUMN "identity_kind" text;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ADD COLUMN "identity_id" text;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ADD COLUMN "identity_version" bigint;