/**
 * A PostHog-compatible capture endpoint on loopback, for tests, benchmarks and the demo.
 *
 * It speaks what posthog-node (v5, capture mode v0) sends: `POST /batch/` with
 * `{ api_key, batch: [...], sent_at, historical_migration? }`, gzip-compressed (`Content-Encoding: gzip`)
 * unless the client has `disableCompression: true`. It validates like PostHog's capture service (one
 * invalid event rejects the whole request, nothing of it is kept), answers `200 {"status":1}` and records
 * the accepted events in arrival order. `/e/`, `/i/v0/e/` and `/capture/` take the same batch body, a bare
 * array of events or a single event. Any other path answers 404 (and is logged, so a stray `/flags/`
 * call is visible in `requests`).
 *
 * Faults are injected on command: `failNext`, `failFor`, `rejectEventsWhere`, `delayNext`, `dropNext`,
 * `overQuota`. Injected faults apply before validation, like an outage in front of PostHog would.
 *
 * Stricter than PostHog on purpose, so bugs surface here rather than as silently altered data:
 * a `distinct_id` over 200 characters is rejected (PostHog truncates it to 200), `distinct_id` must be a
 * string (PostHog stringifies numbers), and a well-formed but wrong api key is rejected with 401 when the
 * `apiKey` option is set (PostHog accepts it at capture and drops the events later).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzip } from 'node:zlib';

/** One event as it travels in `batch` (posthog-node sends event, distinct_id, properties, timestamp, uuid). */
export interface WireEvent {
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
export type ReceivedEvent = WireEvent & {
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
  onAccepted?: (batch: readonly WireEvent[], receivedAt: number) => void;
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
  waitFor(
    condition: number | ((events: readonly ReceivedEvent[]) => boolean),
    options?: WaitOptions,
  ): Promise<readonly ReceivedEvent[]>;
  /** The same for the request log. */
  waitForRequests(
    condition: number | ((requests: readonly RequestRecord[]) => boolean),
    options?: WaitOptions,
  ): Promise<readonly RequestRecord[]>;
  /**
   * The next `n` requests are answered `status` (e.g. 500, 503, 429, 413) without being looked at (nothing is
   * kept, whatever the status: with `raw` and `headers` it plays a redirect, a web page or a proxy's 200).
   */
  failNext(n: number, status: number, options?: FailOptions): void;
  /** Every request in the next `ms` milliseconds is answered `status` (after any one-shot faults). */
  failFor(ms: number, status: number, options?: FailOptions): void;
  /** Any request whose batch holds an event matching `predicate` is answered `status` (400), nothing kept. */
  rejectEventsWhere(predicate: (event: WireEvent) => boolean, options?: RejectOptions): void;
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

type OneShotFault =
  | { kind: 'fail'; status: number; options: FailOptions }
  | { kind: 'delay'; ms: number }
  | { kind: 'drop'; ingested: boolean };

interface RejectRule {
  predicate: (event: WireEvent) => boolean;
  status: number;
  remaining: number;
  message: string | undefined;
}

/** A request the server answers with an error status and a JSON body. */
class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly index: number | undefined;

  constructor(status: number, code: string, message: string, index?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.index = index;
  }
}

const UUID_REGEX = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_DISTINCT_ID_CHARS = 200;
const BATCH_PATHS = new Set(['/batch', '/e', '/i/v0/e', '/capture']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function gunzipLimited(body: Buffer, maxOutputLength: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    gunzip(body, { maxOutputLength }, (error, result) => (error ? reject(error) : resolve(result))),
  );
}

function describeCondition(condition: number | ((...args: never[]) => boolean), noun: string): string {
  if (typeof condition === 'number') return `at least ${condition} ${noun}`;
  return condition.name ? `predicate ${condition.name}` : 'predicate';
}

function summarizeStatuses(requests: readonly RequestRecord[]): string {
  const counts = new Map<string, number>();
  for (const r of requests) {
    const key = r.status === 0 ? 'dropped' : r.status === 200 && r.outcome === 'pending' ? 'pending' : String(r.status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k}×${n}`).join(', ') || 'none';
}

/** Finds the api key: batch-level `api_key` / `token` / `$token`, else the events' own. */
function extractToken(envelope: Record<string, unknown> | undefined, events: unknown[]): string | undefined {
  const tokens = new Set<unknown>();
  for (const holder of envelope ? [envelope] : []) {
    for (const field of ['api_key', 'token', '$token']) if (holder[field] !== undefined) tokens.add(holder[field]);
  }
  if (tokens.size === 0) {
    for (const event of events) {
      if (!isPlainObject(event)) continue;
      const properties = isPlainObject(event.properties) ? event.properties : {};
      for (const value of [event.api_key, event.token, event.$token, properties.token]) {
        if (value !== undefined) tokens.add(value);
      }
    }
  }
  if (tokens.size > 1) throw new HttpError(401, 'multiple_tokens', 'batch submitted with inconsistent api_key values');
  const [token] = tokens;
  if (token === undefined || token === null || token === '') {
    throw new HttpError(401, 'no_token', 'event submitted without an api_key');
  }
  if (typeof token !== 'string') throw new HttpError(401, 'invalid_token', 'API key is not valid: not a string');
  return token;
}

function validateEvent(candidate: unknown, index: number, maxEventBytes: number): WireEvent {
  const at = `batch[${index}]`;
  const fail = (code: string, message: string) => new HttpError(400, code, `${at}: ${message}`, index);
  if (!isPlainObject(candidate)) throw fail('invalid_event', 'event is not a JSON object');
  const { event, distinct_id: distinctId, uuid, properties, timestamp } = candidate;
  if (typeof event !== 'string' || event.length === 0) {
    throw fail('missing_event_name', 'event submitted without a name (`event` must be a non-empty string)');
  }
  if (distinctId === undefined || distinctId === null) throw fail('missing_distinct_id', 'event submitted without a distinct_id');
  if (typeof distinctId !== 'string') throw fail('invalid_distinct_id', `distinct_id must be a string, got ${typeof distinctId}`);
  if (distinctId.length === 0) throw fail('empty_distinct_id', 'event submitted with an empty distinct_id');
  const chars = [...distinctId].length;
  if (chars > MAX_DISTINCT_ID_CHARS) {
    throw fail('distinct_id_too_long', `distinct_id is ${chars} characters, at most ${MAX_DISTINCT_ID_CHARS} allowed`);
  }
  if (uuid !== undefined && uuid !== null && (typeof uuid !== 'string' || !UUID_REGEX.test(uuid))) {
    throw fail('invalid_uuid', `uuid ${JSON.stringify(uuid)} is not a valid UUID`);
  }
  if (properties !== undefined && !isPlainObject(properties)) {
    throw fail('invalid_properties', `properties must be a JSON object, got ${properties === null ? 'null' : Array.isArray(properties) ? 'array' : typeof properties}`);
  }
  if (timestamp !== undefined && timestamp !== null && typeof timestamp !== 'string') {
    throw fail('invalid_timestamp', `timestamp must be a string, got ${typeof timestamp}`);
  }
  const size = Buffer.byteLength(JSON.stringify(candidate), 'utf8');
  if (size > maxEventBytes) {
    throw fail('event_too_big', `maximum event size exceeded: ${size} bytes, at most ${maxEventBytes} allowed`);
  }
  return candidate as WireEvent;
}

export async function startCaptureServer(options: CaptureServerOptions = {}): Promise<CaptureServer> {
  const apiKey = options.apiKey;
  const maxEventBytes = options.maxEventBytes ?? 1_000_000;
  const maxBodyBytes = options.maxBodyBytes ?? 20_000_000;

  let events: ReceivedEvent[] = [];
  let accepted = 0;
  const keepEvents = options.keepEvents ?? true;
  let requests: RequestRecord[] = [];
  let faults: OneShotFault[] = [];
  let failWindow: { until: number; status: number; options: FailOptions } | undefined;
  let rejectRules: RejectRule[] = [];
  let quotaExceeded = false;
  /** Bumped by reset(): requests that arrived before it are no longer recorded. */
  let generation = 0;
  let nextRequestId = 1;
  let closed = false;
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<{ check: () => void; fail: (error: Error) => void }>();

  const notify = () => {
    for (const waiter of [...waiters]) waiter.check();
  };

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  };

  /** Parses and validates a body; returns the events or throws HttpError. */
  const parse = async (
    path: string,
    query: URLSearchParams,
    headers: IncomingMessage['headers'],
    raw: Buffer,
    entry: RequestRecord,
  ): Promise<WireEvent[]> => {
    const encoding = String(headers['content-encoding'] ?? '').toLowerCase();
    const compression = query.get('compression') ?? '';
    const gzip = encoding === 'gzip' || compression === 'gzip' || compression === 'gzip-js' || (raw[0] === 0x1f && raw[1] === 0x8b);
    entry.gzip = gzip;
    let text: string;
    if (gzip) {
      let inflated: Buffer;
      try {
        inflated = await gunzipLimited(raw, maxBodyBytes);
      } catch (error) {
        if (error instanceof RangeError || (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new HttpError(413, 'payload_too_large', `decompressed body exceeds ${maxBodyBytes} bytes`);
        }
        throw new HttpError(400, 'request_decoding_error', `failed to decode request: gzip: ${(error as Error).message}`);
      }
      text = inflated.toString('utf8');
    } else {
      text = raw.toString('utf8');
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new HttpError(400, 'request_parsing_error', `failed to parse request: ${(error as Error).message}`);
    }
    let envelope: Record<string, unknown> | undefined;
    let batch: unknown;
    if (Array.isArray(body)) {
      batch = body;
    } else if (isPlainObject(body) && 'batch' in body) {
      envelope = body;
      batch = body.batch;
      if (typeof body.sent_at === 'string') entry.sentAt = body.sent_at;
      entry.envelopeKeys = Object.keys(body);
      entry.historicalMigration = body.historical_migration === true;
    } else if (isPlainObject(body) && path !== '/batch') {
      batch = [body]; // a single event, on /e/ or /capture/
    } else {
      throw new HttpError(400, 'request_parsing_error', 'failed to parse request: expected an object with a `batch` array');
    }
    if (!Array.isArray(batch)) throw new HttpError(400, 'request_parsing_error', 'failed to parse request: `batch` is not an array');
    entry.events = batch.length;
    if (keepEvents) entry.uuids = batch.flatMap((e) => (isPlainObject(e) && typeof e.uuid === 'string' ? [e.uuid] : []));
    if (batch.length === 0) throw new HttpError(400, 'empty_batch', 'request holds no events');
    const token = extractToken(envelope, batch);
    if (apiKey !== undefined && token !== apiKey) {
      throw new HttpError(401, 'invalid_token', `API key is not valid: ${JSON.stringify(token)} is not this project's key`);
    }
    return batch.map((event, index) => validateEvent(event, index, maxEventBytes));
  };

  const takeFault = (): OneShotFault | { kind: 'failFor'; status: number; options: FailOptions } | undefined => {
    const oneShot = faults.shift();
    if (oneShot) return oneShot;
    if (failWindow && Date.now() < failWindow.until) return { kind: 'failFor', ...failWindow };
    failWindow = undefined;
    return undefined;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, raw: Buffer, tooLarge: boolean, bytes: number) => {
    const myGeneration = generation;
    /** False once reset() or close() ran: the request is still answered, but no longer recorded. */
    const current = () => generation === myGeneration && !closed;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const entry: RequestRecord = {
      id: nextRequestId++,
      at: Date.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      status: 0,
      events: 0,
      uuids: [],
      gzip: false,
      bytes,
      outcome: 'pending',
      historicalMigration: false,
      late: false,
      clientGone: false,
    };
    requests.push(entry);
    notify();

    const record = (batch: WireEvent[], late: boolean) => {
      entry.outcome = 'accepted';
      entry.late = late;
      if (!current()) return;
      const receivedAt = Date.now();
      accepted += batch.length;
      options.onAccepted?.(batch, receivedAt);
      if (!keepEvents) return;
      for (const wire of batch) {
        wire.properties ??= {};
        Object.defineProperties(wire, {
          late: { value: late, enumerable: false },
          requestId: { value: entry.id, enumerable: false },
          receivedAt: { value: receivedAt, enumerable: false },
        });
        events.push(wire as ReceivedEvent);
      }
    };
    const send = (status: number, body: unknown, headers?: Record<string, string>) => {
      entry.status = status;
      if (!res.destroyed) sendJson(res, status, body, headers);
    };

    // Injected failures first: an outage in front of PostHog does not look at the body.
    const fault = takeFault();
    if (fault?.kind === 'fail' || fault?.kind === 'failFor') {
      entry.fault = fault.kind;
      entry.outcome = 'rejected';
      entry.error = `injected HTTP ${fault.status}`;
      const headers: Record<string, string> = { ...fault.options.headers };
      if (fault.options.retryAfter !== undefined) headers['Retry-After'] = String(fault.options.retryAfter);
      // Parsed only to log what the failed request carried.
      await parse(path, url.searchParams, req.headers, raw, entry).catch(() => undefined);
      if (fault.options.raw !== undefined) {
        entry.status = fault.status;
        if (!res.destroyed) {
          res.writeHead(fault.status, { 'Content-Length': String(Buffer.byteLength(fault.options.raw)), ...headers });
          res.end(fault.options.raw);
        }
      } else {
        send(fault.status, fault.options.body ?? { type: 'injected_fault', detail: entry.error }, headers);
      }
      return notify();
    }

    let batch: WireEvent[] | undefined;
    let rejection: HttpError | undefined;
    if (req.method !== 'POST') {
      rejection = new HttpError(405, 'method_not_allowed', `${req.method} ${url.pathname}: only POST is served`);
    } else if (!BATCH_PATHS.has(path)) {
      rejection = new HttpError(404, 'not_found', `${url.pathname} is not served by this capture server (only /batch/, /e/, /i/v0/e/, /capture/)`);
    } else if (tooLarge) {
      rejection = new HttpError(413, 'payload_too_large', `request body exceeds ${maxBodyBytes} bytes`);
    } else {
      try {
        batch = await parse(path, url.searchParams, req.headers, raw, entry);
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        rejection = error;
      }
    }

    if (fault?.kind === 'drop') {
      entry.fault = 'drop';
      entry.outcome = 'dropped';
      entry.error = 'connection dropped without a response';
      if (batch && !rejection && fault.ingested) record(batch, true);
      res.socket?.destroy();
      return notify();
    }

    if (batch && !rejection) {
      for (const rule of rejectRules) {
        const index = batch.findIndex((event) => rule.predicate(event));
        if (index === -1) continue;
        rule.remaining -= 1;
        if (rule.remaining <= 0) rejectRules = rejectRules.filter((r) => r !== rule);
        const match = batch[index]!;
        entry.fault = 'reject';
        rejection = new HttpError(
          rule.status,
          'rejected_event',
          rule.message ?? `batch[${index}]: event ${JSON.stringify(match.event)} uuid ${String(match.uuid)} rejected (injected)`,
          index,
        );
        break;
      }
    }
    if (rejection) {
      entry.outcome = 'rejected';
      entry.error = rejection.message;
    }
    const overQuotaNow = !rejection && quotaExceeded;
    if (overQuotaNow) {
      entry.fault = 'overQuota';
      entry.outcome = 'over-quota';
    }

    /** Records what PostHog would keep; `late` when the client will not see the answer. */
    const ingest = (late: boolean) => {
      if (!rejection && !overQuotaNow) record(batch!, late);
    };
    const respond = () => {
      if (rejection) {
        send(rejection.status, {
          type: 'validation_error',
          code: rejection.code,
          detail: rejection.message,
          ...(rejection.index !== undefined && { index: rejection.index }),
        });
      } else {
        ingest(false);
        send(200, { status: options.acceptance ?? 1 });
      }
      notify();
    };

    if (fault?.kind !== 'delay') return respond();

    entry.fault ??= 'delay';
    entry.status = rejection ? rejection.status : 200; // what it will answer
    const timer = setTimeout(() => {
      timers.delete(timer);
      res.off('close', onClientGone);
      respond();
    }, fault.ms);
    timers.add(timer);
    // The client gave up (request timeout) before the answer: PostHog would still have ingested the batch.
    const onClientGone = () => {
      clearTimeout(timer);
      timers.delete(timer);
      entry.clientGone = true;
      ingest(true);
      notify();
    };
    res.once('close', onClientGone);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > maxBodyBytes) {
        tooLarge = true;
        chunks.length = 0; // keep draining, stop buffering
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks), tooLarge, bytes).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) sendJson(res, 500, { type: 'server_error', detail: String(error) });
      });
    });
    req.on('error', () => res.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  function waitUntil<T>(
    list: () => readonly T[],
    condition: number | ((items: readonly T[]) => boolean),
    noun: string,
    { timeoutMs = 5_000, what }: WaitOptions,
  ): Promise<readonly T[]> {
    const satisfied = (items: readonly T[]) => (typeof condition === 'number' ? items.length >= condition : condition(items));
    return new Promise((resolve, reject) => {
      if (closed) return reject(new Error('capture server: waitFor on a closed server'));
      const waiter = {
        check: () => {
          let ok: boolean;
          try {
            ok = satisfied(list());
          } catch (error) {
            done();
            return reject(error);
          }
          if (ok) {
            done();
            resolve([...list()]);
          }
        },
        fail: (error: Error) => {
          done();
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        const label = what ? `${what} (${describeCondition(condition, noun)})` : describeCondition(condition, noun);
        const recent = requests
          .slice(-5)
          .map((r) => `#${r.id} ${r.path} ${r.status === 0 ? r.outcome : r.status}${r.fault ? ` [${r.fault}]` : ''} ${r.events} events${r.error ? `: ${r.error}` : ''}`)
          .join('; ');
        waiter.fail(
          new Error(
            `capture server: timed out after ${timeoutMs} ms waiting for ${label}; ` +
              `${events.length} events accepted (${events.filter((e) => e.late).length} late), ` +
              `${requests.length} requests (${summarizeStatuses(requests)})` +
              (recent ? `; last: ${recent}` : '') +
              (faults.length ? `; ${faults.length} one-shot faults still pending` : ''),
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(waiter);
      };
      waiters.add(waiter);
      waiter.check();
    });
  }

  const counts = (ignoreLate: boolean) => {
    const result = new Map<string, { count: number; late: number }>();
    for (const event of events) {
      if (typeof event.uuid !== 'string' || (ignoreLate && event.late)) continue;
      const entry = result.get(event.uuid) ?? { count: 0, late: 0 };
      entry.count += 1;
      if (event.late) entry.late += 1;
      result.set(event.uuid, entry);
    }
    return result;
  };

  const positiveCount = (n: number, name: string) => {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name}: n must be a non-negative integer, got ${n}`);
  };

  return {
    url,
    port,
    get events() {
      return events;
    },
    get accepted() {
      return accepted;
    },
    get requests() {
      return requests;
    },
    get pendingFaults() {
      return faults.length;
    },
    byUuid() {
      const result = new Map<string, ReceivedEvent[]>();
      for (const event of events) {
        if (typeof event.uuid !== 'string') continue;
        const list = result.get(event.uuid) ?? [];
        list.push(event);
        result.set(event.uuid, list);
      }
      return result;
    },
    countsByUuid({ ignoreLate = false } = {}) {
      return new Map([...counts(ignoreLate)].map(([uuid, { count }]) => [uuid, count]));
    },
    duplicates({ ignoreLate = false } = {}) {
      return [...counts(ignoreLate)].filter(([, c]) => c.count > 1).map(([uuid, c]) => ({ uuid, ...c }));
    },
    waitFor(condition, waitOptions = {}) {
      return waitUntil(() => events, condition, 'accepted events', waitOptions);
    },
    waitForRequests(condition, waitOptions = {}) {
      return waitUntil(() => requests, condition, 'requests', waitOptions);
    },
    failNext(n, status, failOptions = {}) {
      positiveCount(n, 'failNext');
      for (let i = 0; i < n; i++) faults.push({ kind: 'fail', status, options: failOptions });
    },
    failFor(ms, status, failOptions = {}) {
      failWindow = { until: Date.now() + ms, status, options: failOptions };
    },
    rejectEventsWhere(predicate, { status = 400, times = Infinity, message } = {}) {
      rejectRules.push({ predicate, status, remaining: times, message });
    },
    delayNext(n, ms) {
      positiveCount(n, 'delayNext');
      for (let i = 0; i < n; i++) faults.push({ kind: 'delay', ms });
    },
    dropNext(n, { ingested = false } = {}) {
      positiveCount(n, 'dropNext');
      for (let i = 0; i < n; i++) faults.push({ kind: 'drop', ingested });
    },
    overQuota(enabled = true) {
      quotaExceeded = enabled;
    },
    clearFaults() {
      faults = [];
      failWindow = undefined;
      rejectRules = [];
      quotaExceeded = false;
    },
    reset() {
      generation += 1;
      events = [];
      accepted = 0;
      requests = [];
      faults = [];
      failWindow = undefined;
      rejectRules = [];
      quotaExceeded = false;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const waiter of [...waiters]) waiter.fail(new Error('capture server closed while waiting'));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
