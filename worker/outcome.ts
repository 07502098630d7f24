/**
 * What to do with a batch after PostHog answered: pure decisions, tested as a table.
 *
 * - accepted: delete the rows.
 * - 400 / 413 / 422 reject the request as a whole for its content: a batch of several events is split in
 *   two and each half sent again (bisection), until the rejected event stands alone; a single rejected
 *   event is dead-lettered with PostHog's answer.
 * - 408, 429, 5xx, timeouts and connection errors are passing: every row is retried later, no sooner than
 *   a Retry-After says.
 * - Other answers (401/403 wrong key, 404 wrong host, ...) are the deployment's fault, not the event's:
 *   retried with backoff like an outage (and dead-lettered only after the attempt limit), never bisected.
 */
import type { SendResult } from './sender.ts';

export type Decision =
  | { action: 'delivered' }
  | { action: 'bisect' }
  | { action: 'dead'; reason: string }
  | { action: 'retry'; error: string; retryAfterMs?: number };

const CONTENT_REJECTIONS = new Set([400, 413, 422]);

export function decide(result: SendResult, batchSize: number): Decision {
  if (result.ok) return { action: 'delivered' };
  if (result.kind === 'http' && CONTENT_REJECTIONS.has(result.status)) {
    return batchSize > 1 ? { action: 'bisect' } : { action: 'dead', reason: result.message };
  }
  const retryAfterMs = result.kind === 'http' ? result.retryAfterMs : undefined;
  return { action: 'retry', error: result.message, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
}
