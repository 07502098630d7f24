-- Handlers' transactions no longer NOTIFY: PostgreSQL serialises the commits of every transaction that
-- notified (a global lock on the notification queue is held across the commit's WAL flush), which on a
-- durable server cut the handlers' commit rate to a third. Workers find new rows with an index-only probe.
DROP TRIGGER IF EXISTS "outbox_notify_worker" ON "posthog_outbox"."outbox";
--> statement-breakpoint
DROP FUNCTION IF EXISTS "posthog_outbox"."notify_worker"();
