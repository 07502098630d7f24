/**
 * The raw database limit: `DELETE ... WHERE uuid IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING *`
 * until the outbox is empty, rows read into Node and dropped: no HTTP, no posthog-node.
 * Params: `batchSize` (default 1000), `lanes` (statements in flight at once, default 2).
 */
import postgres from 'postgres';
import { serveDesign } from './protocol.ts';

await serveDesign(async ({ databaseUrl, params }) => {
  const batchSize = params.batchSize ?? 1000;
  const lanes = params.lanes ?? 2;
  const sql = postgres(databaseUrl, { max: lanes, onnotice: () => {} });
  await sql`SELECT 1`;
  let deleted = 0;
  const lane = async () => {
    for (;;) {
      const rows = await sql`
        DELETE FROM posthog_outbox.outbox WHERE uuid IN (
          SELECT uuid FROM posthog_outbox.outbox ORDER BY uuid LIMIT ${batchSize} FOR UPDATE SKIP LOCKED
        ) RETURNING *`;
      deleted += rows.length;
      if (rows.length === 0) return;
    }
  };
  return {
    async go() {
      await Promise.all(Array.from({ length: lanes }, lane));
      return { deleted };
    },
    async stop() {
      await sql.end({ timeout: 2 });
    },
  };
});
