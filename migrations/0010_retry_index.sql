-- The handler's insert no longer adds an entry to a `next_attempt_at` index: on a durable server at 16
-- connections that entry (every insert writing the index's right-most page) cost a few percent of the
-- handler's commits/s (bench A/B, 2 cores). Rows never tried (`attempts` = 0) are claimed in primary-key order
-- (UUIDv7: write order); only rows that have failed are in the new partial index, which the claim reads for
-- retries that have come due. Building it scans the table under a lock that holds inserts for that scan (a
-- moment on an outbox that keeps up; on a large backlog, migrate once it has drained).
DROP INDEX "posthog_outbox"."outbox_next_attempt_at_idx";--> statement-breakpoint
CREATE INDEX "outbox_retry_idx" ON "posthog_outbox"."outbox" USING btree ("next_attempt_at") WHERE "posthog_outbox"."outbox"."attempts" > 0;
