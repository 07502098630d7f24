/**
 * The ceiling for anything built on posthog-node: the same events, already in memory (no database), through
 * one posthog-node client, `capture()` a batch then `flush()`, batch after batch, in one process.
 * Params: `events`, `batchSize` (default 1000).
 */
import { PostHog } from 'posthog-node';
import { wireEvents } from '../events.ts';
import { serveDesign } from './protocol.ts';

await serveDesign(async ({ host, apiKey, params }) => {
  const batchSize = params.batchSize ?? 1000;
  const events = wireEvents(params.events ?? 0);
  const posthog = new PostHog(apiKey, { host, flushAt: batchSize, maxBatchSize: batchSize, maxQueueSize: batchSize * 2, flushInterval: 0, disableGeoip: true });
  posthog.on('error', (error) => process.stderr.write(`posthog-node error: ${String(error)}\n`));
  return {
    async go() {
      for (let from = 0; from < events.length; from += batchSize) {
        for (let i = from; i < Math.min(events.length, from + batchSize); i++) {
          const e = events[i]!;
          posthog.capture({ uuid: e.uuid, event: e.event, distinctId: e.distinctId, properties: e.properties, groups: e.groups, timestamp: e.timestamp });
        }
        await posthog.flush();
      }
      return { captured: events.length };
    },
    async stop() {
      await posthog.shutdown(2_000);
    },
  };
});
