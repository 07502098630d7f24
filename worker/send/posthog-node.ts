/**
 * posthog-node as the sender (worker/send/sender.ts) uses it, checked when the worker loads it. Beyond its
 * public surface (`capture`, `flush`, `captureAi`, the `fetch` option) the sender uses the synchronous capture
 * path, the flush that waits for `captureAi`'s preparation, and the hook that says which events a request
 * carries. They live in `@posthog/core`; package.json pins both packages to the versions tested
 * (test/worker/posthog-node.test.ts fails when an upgrade removes one or changes the wire), and a release that
 * lacks one is refused here, at import, rather than mid-drain. Their worth, measured side by side (1,000-event
 * batches, posthog-node's own work only): 3.2 us of CPU per event against 7.7 us through the public
 * `capture()` + `shutdown()`, about 8% of the drain's CPU per event (process + PostgreSQL,
 * docs/performance.md), which is what keeps it within 1.1x the reference outbox's CPU.
 */
import { PostHog } from 'posthog-node';

export { PostHog };

export const POSTHOG_NODE_INTERNALS = ['captureStateless', 'flushWithPendingPromises', 'sendBatch'] as const;

const missing = POSTHOG_NODE_INTERNALS.filter((name) => typeof (PostHog.prototype as unknown as Record<string, unknown>)[name] !== 'function');
if (missing.length > 0) {
  throw new Error(
    `the installed posthog-node has no ${missing.join(', ')}: posthog-outbox was tested with the version its package.json pins; install that one`,
  );
}
