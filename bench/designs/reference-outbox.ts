/**
 * The reference outbox, the design anyone would write in an afternoon: in a transaction, claim 1000 rows
 * with FOR UPDATE SKIP LOCKED, capture them through ONE posthog-node client, flush(), delete them, commit;
 * repeat until the outbox is empty. No leases, retries, dead letters or re-identify: the bar to beat.
 * Params: `batchSize` (default 1000).
 */
import { PostHog } from 'posthog-node';
import postgres from 'postgres';
import { serveDesign } from './protocol.ts';

interface Row {
  uuid: string;
  event: string;
  distinct_id: string;
  properties: Record<string, unknown>;
  groups: Record<string, string>;
  timestamp: Date;
}

await serveDesign(async ({ databaseUrl, host, apiKey, params }) => {
  const batchSize = params.batchSize ?? 1000;
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await sql`SELECT 1`;
  const posthog = new PostHog(apiKey, { host, flushAt: batchSize, maxBatchSize: batchSize, maxQueueSize: batchSize * 2, flushInterval: 0, disableGeoip: true });
  posthog.on('error', (error) => process.stderr.write(`posthog-node error: ${String(error)}\n`));

  const drainBatch = () =>
    sql.begin(async (tx) => {
      const rows = await tx<Row[]>`
        SELECT uuid, event, distinct_id, properties, groups, timestamp FROM posthog_outbox.outbox
        ORDER BY uuid LIMIT ${batchSize} FOR UPDATE SKIP LOCKED`;
      for (const r of rows) {
        posthog.capture({ uuid: r.uuid, event: r.event, distinctId: r.distinct_id, properties: r.properties, groups: r.groups, timestamp: r.timestamp });
      }
      await posthog.flush();
      await tx`DELETE FROM posthog_outbox.outbox WHERE uuid = ANY(${rows.map((r) => r.uuid)}::uuid[])`;
      return rows.length;
    });

  return {
    async go() {
      let delivered = 0;
      for (let n = await drainBatch(); n > 0; n = await drainBatch()) delivered += n;
      return { delivered };
    },
    async stop() {
      await posthog.shutdown(2_000);
      await sql.end({ timeout: 2 });
    },
  };
});
