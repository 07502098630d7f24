/**
 * Sends one batch of outbox rows to PostHog through posthog-node and reports one outcome for the batch.
 *
 * posthog-node is built to be fire-and-forget: it drops events when its queue is full, drops batches after
 * its own retries, and keeps events in memory after network errors (to send them with whatever comes
 * next). None of that may decide what was delivered, so each batch gets a client of its own, sized so the
 * whole batch is one `/batch/` request, with posthog-node's retries off, and thrown away afterwards: an
 * event can neither be dropped by the client nor leak into another batch. `flush()` resolves only when
 * PostHog accepted the request and rejects otherwise, which is the outcome.
 */
import { PostHog } from 'posthog-node';

/** An event as it goes to PostHog: the uuid and timestamp written at record time are sent unchanged. */
export interface WireEvent {
  uuid: string;
  event: string;
  distinctId: string;
  properties: Record<string, unknown>;
  groups: Record<string, string>;
  timestamp: Date;
}

export interface PostHogTarget {
  apiKey: string;
  /** e.g. `https://us.i.posthog.com` */
  host: string;
  /** Per-request timeout. Default 10 s. */
  requestTimeoutMs?: number;
}

/** How a batch went. `status` is PostHog's HTTP status; `body` its answer, for dead-letter reasons. */
export type SendResult =
  | { ok: true }
  | { ok: false; kind: 'http'; status: number; retryAfterMs?: number; body: string; message: string }
  | { ok: false; kind: 'network'; message: string };

const BODY_LIMIT = 500;

async function describeFailure(error: unknown): Promise<SendResult> {
  const e = error as { name?: string; status?: number; retryAfterMs?: number; text?: Promise<string>; error?: unknown; message?: string };
  if (e?.name === 'PostHogFetchHttpError' && typeof e.status === 'number') {
    let body = '';
    try {
      body = (await e.text) ?? '';
    } catch {
      body = '';
    }
    return {
      ok: false,
      kind: 'http',
      status: e.status,
      ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
      body: body.slice(0, BODY_LIMIT),
      message: `PostHog answered HTTP ${e.status}${body ? `: ${body.slice(0, BODY_LIMIT)}` : ''}`,
    };
  }
  const cause = (e?.error ?? e) as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } };
  const detail = [cause?.name, cause?.code ?? cause?.cause?.code, cause?.message ?? cause?.cause?.message].filter(Boolean).join(' ');
  return { ok: false, kind: 'network', message: `network error talking to PostHog: ${detail || String(error)}` };
}

export async function sendBatch(target: PostHogTarget, events: readonly WireEvent[]): Promise<SendResult> {
  if (events.length === 0) return { ok: true };
  const client = new PostHog(target.apiKey, {
    host: target.host,
    // The whole batch is one request; nothing is ever dropped or sent in the background.
    flushAt: events.length + 1,
    maxBatchSize: events.length + 1,
    maxQueueSize: events.length + 1,
    flushInterval: 0,
    fetchRetryCount: 0,
    requestTimeout: target.requestTimeoutMs ?? 10_000,
    disableGeoip: true,
    // Feature flags are not this client's business: no polling, no /flags calls.
    personalApiKey: undefined,
  });
  // posthog-node reports errors through an emitter too; the rejection of flush() is what we act on.
  client.on('error', () => {});
  for (const e of events) {
    client.capture({
      uuid: e.uuid,
      event: e.event,
      distinctId: e.distinctId,
      properties: e.properties,
      groups: Object.keys(e.groups).length > 0 ? e.groups : undefined,
      timestamp: e.timestamp,
    });
  }
  try {
    await client.flush();
    return { ok: true };
  } catch (error) {
    return describeFailure(error);
  }
}
