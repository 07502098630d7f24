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
 * (`classifyAnswer`: only PostHog's capture answer is acceptance; on Capture V1 `classifyV1Answer` reads
 * PostHog's verdict on each event). worker/send/report.ts turns the requests into what became of each event.
 *
 * A batch of `$ai_*` events only (worker/settle/batch.ts never mixes them with others) goes through posthog-node's
 * `captureAi` to PostHog's AI endpoint (`AI_PATH`, v0's answers), which posthog-node splits at ~5 MiB per request;
 * a 413 there is passed to it as a 400, so that it stops rather than split and drop an event by itself (the
 * worker bisects). A batch of the historical lane is sent by a client built with `historicalMigration`.
 *
 * The capture protocol is the worker's choice (`posthog.captureMode`), not the environment's: posthog-node
 * reads `POSTHOG_CAPTURE_MODE` in its constructor, so each client is built with the variable set to the mode
 * chosen (`withCaptureMode`). In V1 mode posthog-node's `flush()` never rejects (failures come as a
 * `CaptureV1Error` on its 'error' event, which says nothing the requests do not) and it would re-send `retry`
 * events by itself: with `fetchRetryCount: 0` it makes one attempt, so an event is only ever sent again by the
 * worker, after its own backoff.
 */
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { PostHog } from './posthog-node.ts';
import { parseRetryAfter } from '../settle/backoff.ts';
import { uuidsInBody } from './body.ts';
import { classifyAnswer, classifyV1Answer, type EventVerdict, type Verdict } from './outcome.ts';
import { account, accountV1, describeNetworkError, type SendReport, STOPPED, type WireRequest } from './report.ts';
import { isAiEvent } from '../../src/record/validate.ts';
import { type CaptureMode, withCaptureMode } from './capture-mode.ts';
import { defaultOf } from '../settings/schema.ts';

export type { CaptureMode } from './capture-mode.ts';

export { account, accountV1, type EventAnswer, type Failure, type SendReport, STOPPED, summarizeWarnings, type WireRequest } from './report.ts';

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
  /** Capture v0 (`/batch/`, the default) or V1 (`/i/v1/analytics/events`, a verdict per event). */
  captureMode?: CaptureMode;
}

/** The path posthog-node sends Capture V1 batches to: its answers are read for per-event verdicts. */
const V1_PATH = '/i/v1/analytics/events';
/** PostHog's AI endpoint (posthog-node's `captureAi` route), where `$ai_*` events go: v0's body and answers, 8 MiB per event. */
export const AI_PATH = '/i/v0/ai/batch/';

const ANSWER_LIMIT = 64 * 1024;

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

export interface SendOptions {
  /** Asked before each request goes out: true stops the batch there (its events are reported unsent). */
  stop?: () => boolean;
  /** Told as soon as a request meets a target failure, before the batch is settled (other lanes stop at once). */
  onTargetFailure?: () => void;
  /** Told as each request is answered or fails. */
  answered?: () => void;
  /** Send the batch with `historical_migration: true` (posthog-node's `historicalMigration`): the historical lane. */
  historical?: boolean;
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
    const note = (uuids: string[], verdict: Verdict, events?: EventVerdict[]) => {
      watch.requests.push({ uuids, verdict, ...(events ? { events } : {}), seconds: (performance.now() - started) / 1000 });
      options.answered?.();
      if (verdict.kind === 'target' || events?.some((e) => e.kind === 'unanswered')) options.onTargetFailure?.();
    };
    const exchange = (async () => {
      if (options.stop?.()) {
        // The pass failed or the worker is stopping since this batch was claimed: nothing goes out.
        watch.stopped = true;
        throw new Error('not sent: the pass stopped before this request');
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
      let answerText: string;
      try {
        const body = compressing ? await compressing : init.body;
        const headers = compressing ? { ...(init.headers as Record<string, string>), 'Content-Encoding': 'gzip' } : init.headers;
        response = await fetch(url, { ...init, body, headers, redirect: 'manual' });
        answerText = await readAnswer(response);
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
        return new Response(answerText, { status: 502 });
      }
      const answer = {
        status: response.status,
        contentType: response.headers.get('content-type'),
        location: response.headers.get('location'),
        retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
        body: answerText,
      };
      if (new URL(url).pathname.endsWith(V1_PATH)) {
        // Capture V1: posthog-node makes no other attempt whatever it is told (one attempt), so it gets the answer as is.
        const { verdict, events } = classifyV1Answer(answer, read.uuids);
        note(read.uuids, verdict, events);
        return new Response(answerText, { status: verdict.kind === 'accepted' || response.status >= 400 ? response.status : 502, headers: response.headers });
      }
      const verdict = classifyAnswer(answer);
      note(read.uuids, verdict);
      // What posthog-node is told: success only for PostHog's acceptance; a non-PostHog 2xx or a redirect is a
      // failure to it too (502), so it stops there rather than sending the rest of a split batch. A 413 from the
      // AI endpoint is a 400 to it: on its AI route posthog-node would split the request by itself and drop an
      // event refused alone, then go on; the worker's own bisection splits it and pins the event instead.
      const status =
        verdict.kind === 'accepted' ? 200 : response.status === 413 && url.endsWith(AI_PATH) ? 400 : response.status >= 400 ? response.status : 502;
      return new Response(answerText, { status, headers: response.headers });
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
  /** Its events go to the AI endpoint (`captureAi`). */
  private readonly ai: boolean;

  constructor(apiKey: string, options: ConstructorParameters<typeof PostHog>[1], watch: Watch, ai: boolean) {
    super(apiKey, options);
    this.watch = watch;
    this.ai = ai;
  }

  /** posthog-node builds each request from the messages it passes here: their uuids are what the body is checked for. */
  protected override sendBatch(messages: ({ uuid?: unknown } | undefined)[], ...rest: unknown[]): Promise<void> {
    this.watch.serialising = messages.map((m) => (typeof m?.uuid === 'string' ? m.uuid : ''));
    return (super.sendBatch as (...args: unknown[]) => Promise<void>).call(this, messages, ...rest);
  }

  add(e: WireEvent): void {
    // capture() turns `groups` into the `$groups` property; recorded events carry it already (attribution).
    const properties = e.properties.$groups === undefined && hasKeys(e.groups) ? { ...e.properties, $groups: e.groups } : e.properties;
    if (this.ai) {
      // posthog-node's public AI route: prepared in its promise chain (flushWithPendingPromises waits for it).
      this.captureAi({ distinctId: e.distinctId, event: e.event, properties, uuid: e.uuid, timestamp: e.timestamp });
      return;
    }
    this.captureStateless(e.distinctId, e.event, properties as Parameters<PostHog['capture']>[0]['properties'], { uuid: e.uuid, timestamp: e.timestamp });
  }

  /** Sends what is queued (posthog-node's own `flush()`, waiting first for anything it has pending). */
  send(): Promise<void> {
    return this.flushWithPendingPromises();
  }
}

export async function sendBatch(target: PostHogTarget, events: readonly WireEvent[], options: SendOptions = {}): Promise<SendReport> {
  const batch = events.map((e) => e.uuid);
  if (events.length === 0) return { requests: [], accepted: [], unsent: [] };
  const watch: Watch = { requests: [], inFlight: [], stopped: false };
  // A batch of `$ai_*` events only goes to the AI endpoint (v0's answers); any other batch to `/batch/` or, for
  // analytics events only, Capture V1. worker/settle/batch.ts never mixes them (worker/send/lanes.ts).
  const ai = events.every((e) => isAiEvent(e.event));
  const mode: CaptureMode = target.captureMode === 'v1' && !events.some((e) => isAiEvent(e.event)) ? 'v1' : 'v0';
  const client = withCaptureMode(
    mode,
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
          // v0: no retry of a failed request; V1: one attempt, so no event is re-sent inside posthog-node
          // (not a `retry` one either, nor one it already has a verdict for).
          fetchRetryCount: 0,
          requestTimeout: target.requestTimeoutMs ?? defaultOf('posthog.requestTimeoutMs'),
          // (no background flush timer either: flushInterval 0)
          disableGeoip: true,
          historicalMigration: options.historical ?? false,
          // The body is gzipped by our fetch instead: posthog-node's own gzip (CompressionStream, then a CRC check
          // in JavaScript) runs on the main thread, and its output would have to be gunzipped again to read the uuids.
          disableCompression: true,
          // Feature flags are not this client's business: no polling, no /flags calls.
          personalApiKey: undefined,
          fetch: observingFetch(watch, options) as never,
        },
        watch,
        ai,
      ),
  );
  // posthog-node reports errors through an emitter too; the requests we saw are what we act on.
  client.on('error', () => {});
  for (const e of events) client.add(e);
  // The requests noted above are the outcome, not whether this resolves (v0: it rejects on a failed request,
  // and resolves when posthog-node gave up on events by itself; V1: it always resolves): test/worker/sender.test.ts pins that.
  let sdkError: unknown;
  try {
    await client.send();
  } catch (error) {
    sdkError = error;
  }
  // posthog-node stops waiting at its own timeout; the exchange it aborted settles (and is noted) just after.
  await Promise.all(watch.inFlight);
  return (mode === 'v1' ? accountV1 : account)(batch, watch.requests, watch.stopped ? STOPPED : sdkError);
}
