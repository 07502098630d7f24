/**
 * Reading a v0 or ai capture request like PostHog's capture service does: decode the body (gzip by header,
 * query or magic bytes; JSON), find the batch in its envelope, check the api key, and validate every event.
 * One invalid event rejects the whole request: each check throws an HttpError with the status to answer.
 * (Capture V1 is read by v1.ts.)
 */
import type { IncomingMessage } from 'node:http';
import { gunzip } from 'node:zlib';
import type { BatchItem, CaptureEndpoint, RequestRecord } from './types.ts';

/** A request the server answers with an error status and a JSON body. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly index: number | undefined;
  /** More response headers (v1's `Retry-After`). */
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, index?: number, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.index = index;
    this.headers = headers;
  }
}

export const UUID_REGEX = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_DISTINCT_ID_CHARS = 200;
const V0_PATHS = new Set(['/batch', '/e', '/i/v0/e', '/capture']);
const V1_PATH = '/i/v1/analytics/events';
const AI_PATH = '/i/v0/ai/batch';

/** The endpoint a path (without trailing slashes) names, if the server serves it. */
export function endpointOf(path: string): CaptureEndpoint | undefined {
  if (V0_PATHS.has(path)) return 'v0';
  if (path === V1_PATH) return 'v1';
  if (path === AI_PATH) return 'ai';
  return undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function gunzipLimited(body: Buffer, maxOutputLength: number): Promise<Buffer> {
  return new Promise((resolve, reject) => gunzip(body, { maxOutputLength }, (error, result) => (error ? reject(error) : resolve(result))));
}

/** Finds the api key: batch-level `api_key` / `token` / `$token`, else the events' own. */
function extractToken(envelope: Record<string, unknown> | undefined, events: unknown[]): string {
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

/** An endpoint's per-event size limit and how it answers an event over it. */
interface EventSizeLimit {
  bytes: number;
  status: number;
  code: string;
}

function validateEvent(candidate: unknown, index: number, limit: EventSizeLimit): BatchItem {
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
    throw fail(
      'invalid_properties',
      `properties must be a JSON object, got ${properties === null ? 'null' : Array.isArray(properties) ? 'array' : typeof properties}`,
    );
  }
  if (timestamp !== undefined && timestamp !== null && typeof timestamp !== 'string') {
    throw fail('invalid_timestamp', `timestamp must be a string, got ${typeof timestamp}`);
  }
  const size = Buffer.byteLength(JSON.stringify(candidate), 'utf8');
  if (size > limit.bytes) {
    throw new HttpError(limit.status, limit.code, `${at}: maximum event size exceeded: ${size} bytes, at most ${limit.bytes} allowed`, index);
  }
  return candidate as BatchItem;
}

/** A request as read off the socket. */
export interface CaptureRequest {
  /** URL path without trailing slashes (`/batch`). */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  raw: Buffer;
}

export interface ParseLimits {
  /** The project key every request must carry, if set. */
  apiKey: string | undefined;
  maxEventBytes: number;
  maxAiEventBytes: number;
  maxBodyBytes: number;
  /** Note the events' uuids on the request record. */
  keepUuids: boolean;
}

/** Decodes, unwraps and validates a body; returns its events or throws HttpError. Notes on `entry` what the body carried. */
export async function parseBatch(request: CaptureRequest, entry: RequestRecord, limits: ParseLimits): Promise<BatchItem[]> {
  const body = parseJson(await decode(request, entry, limits.maxBodyBytes));
  const { envelope, batch } = unwrap(body, request.path, entry);
  entry.events = batch.length;
  if (limits.keepUuids) entry.uuids = batch.flatMap((e) => (isPlainObject(e) && typeof e.uuid === 'string' ? [e.uuid] : []));
  if (batch.length === 0) throw new HttpError(400, 'empty_batch', 'request holds no events');
  const token = extractToken(envelope, batch);
  if (limits.apiKey !== undefined && token !== limits.apiKey) {
    throw new HttpError(401, 'invalid_token', `API key is not valid: ${JSON.stringify(token)} is not this project's key`);
  }
  if (request.path !== AI_PATH) {
    const limit = { bytes: limits.maxEventBytes, status: 400, code: 'event_too_big' };
    return batch.map((event, index) => validateEvent(event, index, limit));
  }
  // PostHog answers an oversize AI event on this path with 413 (posthog-node then halves the batch).
  const limit = { bytes: limits.maxAiEventBytes, status: 413, code: 'ai_event_too_big' };
  return batch.map((candidate, index) => {
    const event = validateEvent(candidate, index, limit);
    if (!event.event.startsWith('$ai_')) {
      throw new HttpError(400, 'non_ai_event', `batch[${index}]: ${JSON.stringify(event.event)} is not an $ai_* event: ${AI_PATH}/ takes only those`, index);
    }
    return event;
  });
}

/** The body as text, inflated when it is gzip (by header, `?compression=`, or its magic bytes). */
async function decode({ query, headers, raw }: CaptureRequest, entry: RequestRecord, maxBodyBytes: number): Promise<string> {
  const encoding = String(headers['content-encoding'] ?? '').toLowerCase();
  const compression = query.get('compression') ?? '';
  entry.gzip = encoding === 'gzip' || compression === 'gzip' || compression === 'gzip-js' || (raw[0] === 0x1f && raw[1] === 0x8b);
  if (!entry.gzip) return raw.toString('utf8');
  try {
    return (await gunzipLimited(raw, maxBodyBytes)).toString('utf8');
  } catch (error) {
    if (error instanceof RangeError || (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new HttpError(413, 'payload_too_large', `decompressed body exceeds ${maxBodyBytes} bytes`);
    }
    throw new HttpError(400, 'request_decoding_error', `failed to decode request: gzip: ${(error as Error).message}`);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, 'request_parsing_error', `failed to parse request: ${(error as Error).message}`);
  }
}

/** The events of a body: `{ batch: [...] }` (with its envelope), a bare array, or (not on /batch/ or the ai path) a single event. */
function unwrap(body: unknown, path: string, entry: RequestRecord): { envelope?: Record<string, unknown>; batch: unknown[] } {
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
  } else if (isPlainObject(body) && path !== '/batch' && path !== AI_PATH) {
    batch = [body]; // a single event, on /e/ or /capture/
  } else {
    throw new HttpError(400, 'request_parsing_error', 'failed to parse request: expected an object with a `batch` array');
  }
  if (!Array.isArray(batch)) throw new HttpError(400, 'request_parsing_error', 'failed to parse request: `batch` is not an array');
  return envelope ? { envelope, batch } : { batch };
}
