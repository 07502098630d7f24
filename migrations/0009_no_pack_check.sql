-- The check that a row is one event or a pack (0008) costs every insert: PostgreSQL builds a check
-- constraint's expression for each statement that writes the table, about 10 us of the handler's outbox
-- insert on an idle server and ~2% of a durable server's commits/s at 16 connections (bench A/B, 2 cores).
-- Only record() and the worker write the table; a row edited by hand into neither shape is dead-lettered
-- by the worker (src/sql/drain.ts deadLetter), as a corrupt event in a pack already was. Dropping a
-- constraint scans nothing; the ACCESS EXCLUSIVE lock it takes is held for a moment.
ALTER TABLE "posthog_outbox"."outbox" DROP CONSTRAINT "outbox_one_event_or_pack";
