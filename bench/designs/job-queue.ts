/** Where the job-per-event design's jobs wait: shared by the backlog fill and the design's child process. */
export const JOBS_QUEUE = 'bench.job-per-event';

/**
 * src/outbox/queue.ts's PGBOSS_SCHEMA, repeated rather than imported: that module loads drizzle-orm (through
 * the outbox table declarations), which costs a child process ~150 MB of RSS on Node 24.
 */
export const PGBOSS_SCHEMA = 'pgboss';
