/**
 * Sends one batch of outbox rows to PostHog through posthog-node and reports, request by request, what went
 * on the wire and how PostHog answered it.
 *
 * posthog-node is built to be fire-and-forget: it drops events when its queue is full, drops batches after
 * its own retries, keeps events in memory after network errors, and splits a batch by itself after a 413.
 * None of that may decide what was delivered. So each batch gets a client of its own (sized so the batch
 * is one `/batch/` request, retries off, thrown away afterwards), and the `fetch` it is given sees every
 * request: it checks which of the events posthog-node serialised into the request (the messages it hands its
 * `sendBatch`) the body carries, sends it without following redirects, and classifies the answer
 * (`classifyAnswer`: only PostHog's capture answer is acceptance).
 * A row counts as delivered only when its event was in a request PostHog accepted; whether posthog-node
 * thinks it succeeded is not evidence of anything.
 */
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { PostHog } from 'posthog-node';
import { parseRetryAfter } from './backoff.ts';
import { uuidsInBody } from './body.ts';
import { classifyAnswer, type Verdict } from './outcome.ts';
import { defaultOf } from './settings-schema.ts';

const gzip = promisify(gzipCallback);

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

/** One HTTP request posthog-node made for the batch. */
export interface WireRequest {
  /** The uuids of the events in its body, in body order (empty if the body could not be read). */
  uuids: string[];
  verdict: Verdict;
  /** How long it took, in seconds. */
  seconds: number;
}

export type Failure = Exclude<Verdict, { kind: 'accepted' }>;

/** What became of a batch. Every uuid of the batch is in exactly one of `accepted`, `failed` and `unsent`. */
export interface SendReport {
  requests: WireRequest[];
  /** Events that were in a request PostHog accepted. */
  accepted: string[];
  /** The request posthog-node stopped at (not accepted), with its events that were not accepted elsewhere. */
  failed?: { verdict: Failure; uuids: string[] };
  /** Events that went out in no accepted request and not in the failed one. */
  unsent: string[];
}

const ANSWER_LIMIT = 64 * 1024;

/** Passed to `account` when the batch was stopped on purpose (`SendOptions.stop`). */
export const STOPPED: unique symbol = Symbol('stopped');

async function readAnswer(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size >= ANSWER_LIMIT) {
      await reader.cancel().catch(() => undefined);
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describeNetworkError(error: unknown): string {
  const e = error as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } } | undefined;
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return `no answer from PostHog: ${e.message ?? 'request aborted'}`;
  const detail = [e?.name, e?.code ?? e?.cause?.code, e?.cause?.message ?? e?.message].filter(Boolean).join(' ');
  return `network error talking to PostHog: ${detail || String(error)}`;
}

/**
 * The pure accounting: from the requests made for a batch (in order), which events were accepted, which
 * were in the failed request posthog-node stopped at, and which never went out. posthog-node sends one
 * request at a time and stops at the first failure other than a 413 it splits and re-sends, so a failure
 * is only final when it is the last request.
 */
export function account(batch: readonly string[], requests: readonly WireRequest[], sdkError: unknown): SendReport {
  const only = requests.length === 1 ? requests[0]! : undefined;
  if (only?.verdict.kind === 'accepted' && only.uuids.length === batch.length && only.uuids.every((uuid, i) => uuid === batch[i])) {
    // One request, accepted, with every event of the batch in its body (the common case).
    return { requests: [only], accepted: [...batch], unsent: [] };
  }
  if (sdkError === STOPPED && requests.at(-1)?.verdict.kind !== 'target') {
    // Stopped on purpose before a request: what was not accepted is simply unsent.
    const accepted = new Set(requests.flatMap((r) => (r.verdict.kind === 'accepted' ? r.uuids : [])));
    return { requests: [...requests], accepted: batch.filter((u) => accepted.has(u)), unsent: batch.filter((u) => !accepted.has(u)) };
  }
  const acceptedSet = new Set<string>();
  for (const r of requests) if (r.verdict.kind === 'accepted') for (const uuid of r.uuids) acceptedSet.add(uuid);
  const accepted = batch.filter((u) => acceptedSet.has(u));
  const last = requests.at(-1);
  let failed: SendReport['failed'];
  if (last && last.verdict.kind !== 'accepted') {
    failed = { verdict: last.verdict, uuids: last.uuids.filter((u) => !acceptedSet.has(u)) };
  }
  const inFailed = new Set(failed?.uuids ?? []);
  let unsent = batch.filter((u) => !acceptedSet.has(u) && !inFailed.has(u));
  if (unsent.length > 0 && (!failed || failed.uuids.length === 0)) {
    // Events that went nowhere with no failed request of theirs: posthog-node threw before sending, dropped
    // them, or built a request that could not be read. Not the events' fault, but nothing may pass as sent.
    const verdict: Failure = failed?.verdict ?? {
      kind: 'target',
      message:
        sdkError === undefined
          ? `posthog-node did not send ${unsent.length} event(s) of the batch`
          : `posthog-node failed before sending: ${describeNetworkError(sdkError)}`,
    };
    failed = { verdict, uuids: unsent };
    unsent = [];
  }
  return { requests: [...requests], accepted, ...(failed ? { failed } : {}), unsent };
}

export interface SendOptions {
  /** Asked before each request goes out: true stops the batch there (its events are reported unsent). */
  stop?: () => boolean;
  /** Told as soon as a request meets a target failure, before the batch is settled (other lanes stop at once). */
  onTargetFailure?: () => void;
  /** Told as each request is answered or fails. */
  answered?: () => void;
}

/** What the fetch given to posthog-node saw of a batch's requests. */
interface Watch {
  requests: WireRequest[];
  /** Every exchange, settled or not (awaited before the batch is accounted). */
  inFlight: Promise<unknown>[];
  /** A request was not sent because `SendOptions.stop` said so. */
  stopped: boolean;
  /** The uuids of the events posthog-node is serialising into its next request (`BatchClient.sendBatch`). */
  serialising?: string[];
}

/**
 * The `fetch` posthog-node is given: notes the uuids each request carries and how PostHog answered it, sends
 * the body gzipped without following redirects, and tells posthog-node success only for PostHog's acceptance.
 */
function observingFetch(watch: Watch, options: SendOptions): (url: string, init: RequestInit) => Promise<Response> {
  return (url: string, init: RequestInit): Promise<Response> => {
    const started = performance.now();
    const expected = watch.serialising;
    watch.serialising = undefined;
    const note = (uuids: string[], verdict: Verdict) => {
      watch.requests.push({ uuids, verdict, seconds: (performance.now() - started) / 1000 });
      options.answered?.();
      if (verdict.kind === 'target') options.onTargetFailure?.();
    };
    const exchange = (async () => {
      if (options.stop?.()) {
        // The run failed or the worker is stopping since this batch was claimed: nothing goes out.
        watch.stopped = true;
        throw new Error('not sent: the run stopped before this request');
      }
      // posthog-node hands over the JSON (compression is ours: see the client's options in sendBatch). It is
      // compressed on libuv's thread pool while its uuids are read here. zlib's default level: a 1,000-event
      // body (~0.5 MB) takes ~4 ms to 46 KB; level 1 saved ~0.4 ms for 21% more bytes (measured), not worth it.
      const compressing = typeof init.body === 'string' ? gzip(init.body) : undefined;
      const reading = (expected ? uuidsInBody(init.body, expected) : Promise.reject(new Error('posthog-node sent a request it was not seen building'))).then(
        (uuids) => ({ uuids }),
        (error: unknown) => ({ error: error as Error }),
      );
      let response: Response;
      let answer: string;
      try {
        const body = compressing ? await compressing : init.body;
        const headers = compressing ? { ...(init.headers as Record<string, string>), 'Content-Encoding': 'gzip' } : init.headers;
        response = await fetch(url, { ...init, body, headers, redirect: 'manual' });
        answer = await readAnswer(response);
      } catch (error) {
        const read = await reading;
        note('uuids' in read ? read.uuids : [], {
          kind: 'target',
          message: describeNetworkError(init.signal?.aborted ? (init.signal.reason ?? error) : error),
        });
        throw error;
      }
      const read = await reading;
      if ('error' in read) {
        // Which events PostHog got cannot be known: nothing of this request counts as accepted.
        note([], { kind: 'target', message: `could not read the request posthog-node built: ${read.error.message}` });
        return new Response(answer, { status: 502 });
      }
      const verdict = classifyAnswer({
        status: response.status,
        contentType: response.headers.get('content-type'),
        location: response.headers.get('location'),
        retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
        body: answer,
      });
      note(read.uuids, verdict);
      // What posthog-node is told: success only for PostHog's acceptance; a non-PostHog 2xx or a redirect is a
      // failure to it too (502), so it stops there rather than sending the rest of a split batch.
      const status = verdict.kind === 'accepted' ? 200 : response.status >= 400 ? response.status : 502;
      return new Response(answer, { status, headers: response.headers });
    })();
    watch.inFlight.push(exchange.catch(() => undefined));
    return exchange;
  };
}

function hasKeys(object: object): boolean {
  for (const _ in object) return true;
  return false;
}

/**
 * posthog-node's client with the batch's events enqueued through its synchronous (stateless) capture path.
 * `capture()` prepares every event in a promise chain of its own (context, super properties, `before_send`,
 * feature flags: none of which this client uses) before the same enqueue; measured on the bench's events,
 * that chain was half of posthog-node's cost per event (18 -> 9 us) and most of its garbage. The body on the
 * wire is the same (test/worker/sender.test.ts compares the two): the same properties plus posthog-node's
 * `$lib`, `$lib_version`, `$is_server` and `$geoip_disable`, the event's uuid and timestamp.
 */
class BatchClient extends PostHog {
  private readonly watch: Watch;

  constructor(apiKey: string, options: ConstructorParameters<typeof PostHog>[1], watch: Watch) {
    super(apiKey, options);
    this.watch = watch;
  }

  /** posthog-node builds each request from the messages it passes here: their uuids are what the body is checked for. */
  protected override sendBatch(messages: ({ uuid?: unknown } | undefined)[], ...rest: unknown[]): Promise<void> {
    this.watch.serialising = messages.map((m) => (typeof m?.uuid === 'string' ? m.uuid : ''));
    return (super.sendBatch as (...args: unknown[]) => Promise<void>).call(this, messages, ...rest);
  }

  add(e: WireEvent): void {
    // capture() turns `groups` into the `$groups` property; recorded events carry it already (attribution).
    const properties = e.properties.$groups === undefined && hasKeys(e.groups) ? { ...e.properties, $groups: e.groups } : e.properties;
    this.captureStateless(e.distinctId, e.event, properties as Parameters<PostHog['capture']>[0]['properties'], { uuid: e.uuid, timestamp: e.timestamp });
  }

  /** Sends what is queued (posthog-node's own `flush()`, waiting first for anything it has pending). */
  send(): Promise<void> {
    return this.flushWithPendingPromises();
  }
}

/**
 * Builds a posthog-node client in Capture v0 mode (`/batch/`, one answer per request) whatever
 * `POSTHOG_CAPTURE_MODE` says: posthog-node reads that variable when a client is constructed and, set to `v1`,
 * sends to Capture V1, whose per-event verdicts this worker does not read yet: it would take every answer for
 * a failure and send the batch again, and again. The variable is hidden only for the synchronous constructor
 * call, so nothing else in the process sees it change.
 */
export function withCaptureV0<T>(construct: () => T): T {
  const mode = process.env.POSTHOG_CAPTURE_MODE;
  if (mode === undefined) return construct();
  delete process.env.POSTHOG_CAPTURE_MODE;
  try {
    return construct();
  } finally {
    process.env.POSTHOG_CAPTURE_MODE = mode;
  }
}

export async function sendBatch(target: PostHogTarget, events: readonly WireEvent[], options: SendOptions = {}): Promise<SendReport> {
  const batch = events.map((e) => e.uuid);
  if (events.length === 0) return { requests: [], accepted: [], unsent: [] };
  const watch: Watch = { requests: [], inFlight: [], stopped: false };
  const client = withCaptureV0(
    () =>
      new BatchClient(
        target.apiKey,
        {
          host: target.host,
          // The whole batch is one request; nothing is ever dropped or sent in the background.
          flushAt: events.length + 1,
          maxBatchSize: events.length + 1,
          maxQueueSize: events.length + 1,
          flushInterval: 0,
          fetchRetryCount: 0,
          requestTimeout: target.requestTimeoutMs ?? defaultOf('posthog.requestTimeoutMs'),
          // (no background flush timer either: flushInterval 0)
          disableGeoip: true,
          // The body is gzipped by our fetch instead: posthog-node's own gzip (CompressionStream, then a CRC check
          // in JavaScript) runs on the main thread, and its output would have to be gunzipped again to read the uuids.
          disableCompression: true,
          // Feature flags are not this client's business: no polling, no /flags calls.
          personalApiKey: undefined,
          fetch: observingFetch(watch, options) as never,
        },
        watch,
      ),
  );
  // posthog-node reports errors through an emitter too; the requests we saw are what we act on.
  client.on('error', () => {});
  for (const e of events) client.add(e);
  // The requests noted above are the outcome, not whether this resolves (it rejects on a failed request,
  // and resolves when posthog-node gave up on events by itself): test/worker/sender.test.ts pins that.
  let sdkError: unknown;
  try {
    await client.send();
  } catch (error) {
    sdkError = error;
  }
  // posthog-node stops waiting at its own timeout; the exchange it aborted settles (and is noted) just after.
  await Promise.all(watch.inFlight);
  return account(batch, watch.requests, watch.stopped ? STOPPED : sdkError);
}
