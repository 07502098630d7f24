-- The outbox is a queue: every row is inserted, claimed in next_attempt_at order and deleted within
-- seconds. With PostgreSQL's defaults a table is vacuumed once 20% of its rows are dead (50 + 0.2 x rows):
-- after a backlog of a million, 200,000 deleted rows wait for a vacuum while every claim walks their dead
-- entries at the head of the next_attempt_at index. Vacuum after 1% + 1,000 dead rows instead, with five
-- times the default cost limit (200) so a vacuum of this table keeps pace with the drain, and analyse
-- after 2% so the planner (and /metrics' estimate above 10,000 rows) keeps up. SHARE UPDATE EXCLUSIVE: handlers' inserts and the worker are not blocked.
ALTER TABLE "posthog_outbox"."outbox" SET (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_cost_limit = 1000,
  autovacuum_analyze_scale_factor = 0.02
);
