-- Packs: record() with several events writes them as one row (`events`, a JSON array) instead of one row
-- each. On a durable server the handler's transaction paid per event a heap tuple, two index entries and
-- five jsonb conversions; five events cost half the commits/s of the application's own transaction, one pack
-- of five costs about as much as one event did. A row is now either one event (its columns) or a pack (its
-- `events`, the event columns null). Existing rows are single events and satisfy the check (checked once,
-- under an ACCESS EXCLUSIVE lock held for that scan: on a large backlog, migrate when it has drained).
ALTER TABLE "posthog_outbox"."outbox" ALTER COLUMN "event" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ALTER COLUMN "distinct_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ALTER COLUMN "properties" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ALTER COLUMN "groups" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ALTER COLUMN "timestamp" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ADD COLUMN "events" json;--> statement-breakpoint
ALTER TABLE "posthog_outbox"."outbox" ADD CONSTRAINT "outbox_one_event_or_pack" CHECK (("events" IS NULL) = ("event" IS NOT NULL AND "distinct_id" IS NOT NULL AND "properties" IS NOT NULL AND "groups" IS NOT NULL AND "timestamp" IS NOT NULL));
