/** The capture server's public types: what it records, how it is configured, and what it offers a test. */

/** One event as it travels in a `/batch/` body, as the server parses it (the worker's own `WireEvent` is what it gives posthog-node): `batch` (posthog-node sends event, distinct_id, properties, timestamp, uuid). */
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
 * plus three non-enumerable fields (so `toEqual` and `JSON.stringify` still see what was sent).
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
};

export type FaultKind = 'fail' | 'failFor' | 'reject' | 'delay' | 'drop' | 'overQuota';

export interface RequestRecord {
  /** 1, 2, 3... in arrival order (of complete bodies). */
  readonly id: number;
  /** Date.now() when the body had been read. */
  readonly at: number;
  readonly method: string;
  /** URL path without the query string. */
  readonly path: string;
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
  /** The envelope's `sent_at`, if any. */
  sentAt?: string;
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
  /** Largest accepted event, as serialized JSON, in bytes (400 beyond). Default 1,000,000. */
  maxEventBytes?: number;
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
   * The body of an acceptance: `1` answers `{"status":1}` (PostHog's classic capture endpoint), `'Ok'`
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
   * The next `n` requests are answered `status` (e.g. 500, 503, 429, 413) without being looked at (nothing is
   * kept, whatever the status: with `raw` and `headers` it plays a redirect, a web page or a proxy's 200).
   */
  failNext(n: number, status: number, options?: FailOptions): void;
  /** Every request in the next `ms` milliseconds is answered `status` (after any one-shot faults). */
  failFor(ms: number, status: number, options?: FailOptions): void;
  /** Any request whose batch holds an event matching `predicate` is answered `status` (400), nothing kept. */
  rejectEventsWhere(predicate: (event: BatchItem) => boolean, options?: RejectOptions): void;
  /** The next `n` requests are handled normally but answered after `ms`; events are recorded `late` if the client left. */
  delayNext(n: number, ms: number): void;
  /** The next `n` requests have their socket destroyed after the body is read; `ingested` records their (valid) events as late. */
  dropNext(n: number, options?: { ingested?: boolean }): void;
  /** While on, valid requests get `200 {"status":1}` but nothing is recorded (PostHog over its billing quota). */
  overQuota(enabled?: boolean): void;
  /** One-shot faults (failNext, delayNext, dropNext) not consumed yet. */
  readonly pendingFaults: number;
  /** Clears events, requests and every fault. Requests in flight (delayed) are still answered, but no longer recorded. */
  reset(): void;
  /**
   * Clears every fault (one-shot faults, `failFor`, reject rules, over-quota) and keeps the events and
   * requests: "PostHog is back" while traffic is flowing, without losing track of a request in flight.
   */
  clearFaults(): void;
  /** Stops listening, destroys every connection (keep-alive included), rejects pending waits. Idempotent. */
  close(): Promise<void>;
}
