CREATE TABLE "posthog_outbox"."backfills" (
	"entity" text PRIMARY KEY NOT NULL,
	"query_hash" text NOT NULL,
	"last_id" text,
	"enqueued" integer DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
