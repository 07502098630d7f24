/**
 * The job-per-event design: every event is a pg-boss job (sent in the handler's transaction); a pg-boss
 * `work()` handler takes `batchSize` jobs at a time, captures them through one posthog-node client and
 * flushes; pg-boss completes the jobs when the handler returns. Fetches back to back while batches come
 * back full (`burstWhenBatchFull`), so polling never holds it back.
 * Params: `batchSize`, `localConcurrency` (default 1). The jobs wait in `JOBS_QUEUE`.
 */
import { PgBoss } from 'pg-boss';
import { PostHog } from 'posthog-node';
import { JOBS_QUEUE, PGBOSS_SCHEMA } from './job-queue.ts';
import type { WireEvent } from '../events.ts';
import { serveDesign } from './protocol.ts';

await serveDesign(async ({ databaseUrl, host, apiKey, params }) => {
  const batchSize = params.batchSize ?? 100;
  const localConcurrency = params.localConcurrency ?? 1;
  const boss = new PgBoss({
    connectionString: databaseUrl,
    schema: PGBOSS_SCHEMA,
    migrate: false,
    createSchema: false,
    schedule: false,
    supervise: false,
    max: localConcurrency + 2,
  });
  boss.on('error', (error) => process.stderr.write(`pg-boss error: ${String(error)}\n`));
  await boss.start();
  const posthog = new PostHog(apiKey, {
    host,
    flushAt: Math.max(batchSize, 1000),
    maxBatchSize: 1000,
    maxQueueSize: batchSize * localConcurrency * 2 + 1000,
    flushInterval: 0,
    disableGeoip: true,
  });
  posthog.on('error', (error) => process.stderr.write(`posthog-node error: ${String(error)}\n`));
  return {
    async go() {
      await boss.work<WireEvent>(JOBS_QUEUE, { batchSize, localConcurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        for (const { data: e } of jobs) {
          posthog.capture({
            uuid: e.uuid,
            event: e.event,
            distinctId: e.distinctId,
            properties: e.properties,
            groups: e.groups,
            timestamp: new Date(e.timestamp),
          });
        }
        await posthog.flush();
      });
      // Runs until the bench has seen every event arrive and stops it.
    },
    async stop() {
      await boss.stop({ graceful: false, close: true, timeout: 2_000 });
      await posthog.shutdown(2_000);
    },
  };
});
