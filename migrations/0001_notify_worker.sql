-- Wakes the delivery worker when events commit: one notification per inserting statement, delivered by
-- Postgres only at commit (never for rolled-back transactions). The channel is the outbox's schema name.
CREATE OR REPLACE FUNCTION "posthog_outbox"."notify_worker"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify(TG_TABLE_SCHEMA, '');
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "outbox_notify_worker" AFTER INSERT ON "posthog_outbox"."outbox"
  FOR EACH STATEMENT EXECUTE FUNCTION "posthog_outbox"."notify_worker"();
