/**
 * The capture server's public types: what it records, how it is configured, and what it offers a test.
 *
 * Endpoints (`CaptureEndpoint`), each answering what PostHog's capture service answers:
 * - `v0`: `POST /batch/` (also `/e/`, `/i/v0/e/`, `/capture/`): `{ api_key, batch, sent_at, historical_migration? }`.
 *   `200 {"status":1}` (see `acceptance`), or one error status for the whole request (`400` invalid event or event over
 *   `maxEventBytes`, `401` key, `413` body over `maxBodyBytes`), body `{ type, code, detail, index? }`.
 * - `ai`: `POST /i/v0/ai/batch/` (posthog-node's `captureAi`): the v0 body and answers, for `$ai_*` events only
 *   (`400 non_ai_event` otherwise); an event over `maxAiEventBytes` (8 MiB) is `413 ai_event_too_big`.
 * - `v1`: `POST /i/v1/analytics/events` (posthog-node with `POSTHOG_CAPTURE_MODE=v1`): `Authorization: Bearer
 *   <project key>`, headers `PostHog-Sdk-Info`, `PostHog-Attempt`, `PostHog-Request-Id`,
 *   `PostHog-Request-Timestamp`, `User-Agent`, `Content-Type: application/json`, `Content-Encoding` gzip, deflate,
 *   br or zstd; body `{ created_at, historical_migration?, batch: [{ event, uuid, distinct_id, timestamp,
 *   session_id?, window_id?, options, properties }] }`. Request errors answer `{ error, error_description,
 *   error_uri }`: 400 (headers, body, empty batch, missing/invalid/duplicate uuid), 401 (key), 413, 415. Otherwise
 *   `200 {"results": {uuid: {"result": "ok"|"warning"|"drop"|"retry", "details"?}}}` in batch order, with
 *   `Retry-After: 1` when any event is `retry`. An invalid event is a `drop` (details: `missing_event_name`,
 *   `event_name_too_long`, `missing_distinct_id`, `distinct_id_too_large`, `invalid_event_timestamp`,
 *   `malformed_event_properties`, `invalid_options`, `event_too_big`); a known-bad distinct_id (`null`, `0`...) is a
 *   `warning` (`person_processing_disabled`). `ok` and `warning` events are recorded, `drop` and `retry` are not.
 */

/** Which capture endpoint a request or an event came through (see above). */
export type CaptureEndpoint = 'v0' | 'v1' | 'ai';

/** One event's outcome on Capture V1, as answered in `results`. */
export interface V1Verdict {
  result: 'ok' | 'warning' | 'drop' | 'retry';
  details?: string;
}

/**
 * One event as it travels in a body, as the server parses it (the worker's own `WireEvent` is what it gives
 * posthog-node). On v0 and ai posthog-node sends event, distinct_id, properties, timestamp, uuid; on v1 also
 * `options` (`$process_person_profile` and the like lifted out of properties) and `session_id` / `window_id`, and
 * no `$lib` / `$lib_version` in properties.
 */
export interface BatchItem {
  event: string;
  distinct_id: string;
  uuid?: string;
  timestamp?: string;
  properties?: Record<string, unknown>;
  [field: string]: unknown;
}

/**
 * An accepted event: the parsed wire object (with `properties: {}` when it had none, as PostHog reads it),
 * plus non-enumerable fields (so `toEqual` and `JSON.stringify` still see what was sent).
 */
export type ReceivedEvent = BatchItem & {
  properties: Record<string, unknown>;
  /**
   * True when the client did not get the 200 for the request that carried it (it timed out during a
   * `delayNext` delay, or the connection was dropped by `dropNext(n, { ingested: true })`). PostHog would
   * still have ingested it, so a retry with the same uuid is an expected duplicate.
   */
  readonly late: boolean;
  /** `id` of the request in `requests` that carried it. */
  readonly requestId: number;
  /** Date.now() when it was recorded. */
  readonly receivedAt: number;
  /** The endpoint it came through. */
  readonly endpoint: CaptureEndpoint;
  /** Its request carried `historical_migration: true`. */
  readonly historicalMigration: boolean;
  /** `ok`, or on v1 `warning` (accepted with a note: `details`). */
  readonly verdict: 'ok' | 'warning';
  readonly details: string | undefined;
};

export type FaultKind = 'fail' | 'failFor' | 'reject' | 'delay' | 'drop' | 'overQuota' | 'verdict';

export interface RequestRecord {
  /** 1, 2, 3... in arrival order (of complete bodies). */
  readonly id: number;
  /** Date.now() when the body had been read. */
  readonly at: number;
  readonly method: string;
  /** URL path without the query string. */
  readonly path: string;
  /** The endpoint the path names; undefined for a path the server does not serve (404). */
  readonly endpoint: CaptureEndpoint | undefined;
  /** The status answered, or that would have been answered if the client had waited; 0 if dropped. */
  status: number;
  /** Number of events in the body (0 when it could not be parsed). */
  events: number;
  /** The string uuids of those events, in body order. */
  uuids: string[];
  /** Whether the body was gzip (header or magic bytes). */
  gzip: boolean;
  /** Body size on the wire, in bytes. */
  readonly bytes: number;
  /** The envelope's `sent_at`, if any (v0, ai). */
  sentAt?: string;
  /** The envelope's `created_at` (v1). */
  createdAt?: string;
  /** v1: the `PostHog-Attempt` header (1, 2... across posthog-node's retries of one batch). */
  attempt?: number;
  /** v1: the `PostHog-Request-Id` header, the same across the retries of one batch (`id` is the log's own). */
  postHogRequestId?: string;
  /** v1: the verdict answered for each uuid of a 200 (what `results` said). */
  verdicts?: Record<string, V1Verdict>;
  /** The envelope's keys (e.g. `api_key`, `batch`, `sent_at`), when the body was an object. */
  envelopeKeys?: string[];
  /** The envelope's `historical_migration: true` (posthog-node's `historicalMigration` option). */
  historicalMigration: boolean;
  /** The injected fault that decided this request's fate, if any. */
  fault?: FaultKind;
  /** The error message answered (validation failure or injected fault). */
  error?: string;
  outcome: 'pending' | 'accepted' | 'rejected' | 'dropped' | 'over-quota';
  /** Events were recorded but the client never got the 200 (see ReceivedEvent.late). */
  late: boolean;
  /** The client closed the connection before the response was sent. */
  clientGone: boolean;
}

export interface CaptureServerOptions {
  /** When set, every request must carry exactly this api key (401 otherwise). A missing key is always 401. */
  apiKey?: string;
  /** Largest accepted event, as serialized JSON, in bytes (v0: 400 beyond; v1: a `drop`). Default 1,000,000. */
  maxEventBytes?: number;
  /** Largest accepted event on `/i/v0/ai/batch/` (413 beyond). Default 8 MiB (8,388,608), PostHog's and posthog-node's. */
  maxAiEventBytes?: number;
  /** Largest accepted request body, compressed or not, in bytes (413 beyond). Default 20 MB. */
  maxBodyBytes?: number;
  /** Port on 127.0.0.1. Default 0 (ephemeral). */
  port?: number;
  /**
   * Keep every accepted event in `events` (default true). Benchmarks draining millions of events set it
   * false: only `accepted` counts them (and `onAccepted` sees each batch), and requests keep no uuids.
   */
  keepEvents?: boolean;
  /** Called with each accepted batch and when it was accepted (Date.now()). */
  onAccepted?: (batch: readonly BatchItem[], receivedAt: number) => void;
  /**
   * The body of a v0 or ai acceptance: `1` answers `{"status":1}` (PostHog's classic capture endpoint), `'Ok'`
   * answers `{"status":"Ok"}` (its current capture service). Default 1.
   */
  acceptance?: 1 | 'Ok';
}

export interface WaitOptions {
  /** Default 5000. */
  timeoutMs?: number;
  /** Named in the timeout error. */
  what?: string;
}

export interface FailOptions {
  /** Sent as the Retry-After header (seconds, or an HTTP date string). */
  retryAfter?: number | string;
  /** Response body (JSON-serialized). Default `{ type: 'injected_fault', detail }`. */
  body?: unknown;
  /** Response body sent as is instead of `body` (a web page, an empty 200...). */
  raw?: string;
  /** More response headers (`Location` for a redirect, `Content-Type` for a `raw` body...). */
  headers?: Record<string, string>;
}

export interface RejectOptions {
  /** Status answered for a batch holding a matching event. Default 400. */
  status?: number;
  /** How many requests it rejects before it lapses. Default: unlimited (until reset). */
  times?: number;
  /** Error detail in the response body. Default names the first matching event. */
  message?: string;
}

export interface VerdictOptions {
  /** Sent as the verdict's `details` (PostHog's tags: `billing_limit_exceeded`, `not_persisted`...). */
  details?: string;
  /** How many events it decides before it lapses. Default: unlimited (until reset). */
  times?: number;
}

export interface CaptureServer {
  /** `http://127.0.0.1:PORT`, to pass as posthog-node's `host`. */
  readonly url: string;
  readonly port: number;
  /** Every accepted event, in arrival order (live view; `reset()` replaces it). */
  readonly events: readonly ReceivedEvent[];
  /** How many events were accepted since the last reset (counted even when `keepEvents` is false). */
  readonly accepted: number;
  /** Every request with a complete body, in arrival order (live view). */
  readonly requests: readonly RequestRecord[];
  /** Accepted events grouped by uuid (events without a uuid are left out). */
  byUuid(): Map<string, ReceivedEvent[]>;
  /** How many times each uuid was accepted; `{ ignoreLate: true }` counts only non-late copies. */
  countsByUuid(options?: { ignoreLate?: boolean }): Map<string, number>;
  /** The uuids accepted more than once, with how many of the copies are late; [] when each arrived once. */
  duplicates(options?: { ignoreLate?: boolean }): { uuid: string; count: number; late: number }[];
  /** Resolves with the accepted events once there are at least `count` of them, or the predicate holds. */
  waitFor(condition: number | ((events: readonly ReceivedEvent[]) => boolean), options?: WaitOptions): Promise<readonly ReceivedEvent[]>;
  /** The same for the request log. */
  waitForRequests(condition: number | ((requests: readonly RequestRecord[]) => boolean), options?: WaitOptions): Promise<readonly RequestRecord[]>;
  /**
   * The next `n` requests (any endpoint) are answered `status` (e.g. 500, 503, 429, 413) without being looked at
   * (nothing is kept, whatever the status: with `raw` and `headers` it plays a redirect, a web page or a proxy's 200).
   */
  failNext(n: number, status: number, options?: FailOptions): void;
  /** Every request in the next `ms` milliseconds is answered `status` (after any one-shot faults). */
  failFor(ms: number, status: number, options?: FailOptions): void;
  /** Any request (any endpoint) whose batch holds an event matching `predicate` is answered `status` (400), nothing kept. */
  rejectEventsWhere(predicate: (event: BatchItem) => boolean, options?: RejectOptions): void;
  /**
   * v1 only: an event matching `predicate` that PostHog would accept gets `verdict` instead (the first matching
   * rule decides). `retry` and `drop` events are not recorded; a `retry` adds `Retry-After: 1`, as PostHog does.
   */
  verdictWhere(predicate: (event: BatchItem) => boolean, verdict: V1Verdict['result'], options?: VerdictOptions): void;
  /** The next `n` requests are handled normally but answered after `ms`; events are recorded `late` if the client left. */
  delayNext(n: number, ms: number): void;
  /** The next `n` requests have their socket destroyed after the body is read; `ingested` records their (valid) events as late. */
  dropNext(n: number, options?: { ingested?: boolean }): void;
  /**
   * While on, nothing is recorded, as PostHog over its billing quota: v0 and ai answer `200 {"status":1}`,
   * v1 answers `429 billing_limit_exceeded` with `Retry-After: 1`.
   */
  overQuota(enabled?: boolean): void;
  /** One-shot faults (failNext, delayNext, dropNext) not consumed yet. */
  readonly pendingFaults: number;
  /** Clears events, requests and every fault. Requests in flight (delayed) are still answered, but no longer recorded. */
  reset(): void;
  /**
   * Clears every fault (one-shot faults, `failFor`, reject and verdict rules, over-quota) and keeps the events and
   * requests: "PostHog is back" while traffic is flowing, without losing track of a request in flight.
   */
  clearFaults(): void;
  /** Stops listening, destroys every connection (keep-alive included), rejects pending waits. Idempotent. */
  close(): Promise<void>;
}
