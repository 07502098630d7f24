/**
 * Reading a Capture V1 request (`POST /i/v1/analytics/events`) like PostHog's capture service does
 * (rust/capture/src/v1 in PostHog/posthog): headers first (Bearer key, the PostHog-* headers), then the body
 * (decoded by Content-Encoding, JSON), then the batch. A bad header, body, empty batch or a missing, invalid or
 * repeated uuid rejects the whole request (HttpError); an invalid event only gets its own `drop` verdict.
 */
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, zstdDecompress } from 'node:zlib';
import { HttpError, isPlainObject, UUID_REGEX, type CaptureRequest, type ParseLimits } from './parse.ts';
import type { BatchItem, RequestRecord, V1Verdict } from './types.ts';

/** A batch PostHog would take: every event with the verdict it earned by itself (body order). */
export interface V1Batch {
  events: BatchItem[];
  verdicts: V1Verdict[];
}

const MAX_NAME_BYTES = 200;
const MAX_DISTINCT_ID_BYTES = 200;
const REQUIRED_HEADERS = ['posthog-sdk-info', 'posthog-attempt', 'posthog-request-id', 'posthog-request-timestamp', 'content-type', 'user-agent'];
/** distinct_ids PostHog takes as a client bug: the event is kept, with person processing off (a `warning`). */
const ILLEGAL_DISTINCT_IDS = new Set(
  '0,00000000-0000-0000-0000-000000000000,[object object],anonymous,anonymous-user,backend,distinct_id,distinctid,email,false,guest,id,nan,none,not_authenticated,null,system,true,undefined,user'.split(
    ',',
  ),
);
type Decompress = (body: Buffer, options: { maxOutputLength: number }) => Promise<Buffer>;
const DECOMPRESSORS: Record<string, Decompress> = {
  gzip: promisify(gunzip),
  deflate: promisify(inflate),
  br: promisify(brotliDecompress),
  zstd: promisify(zstdDecompress),
};
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

export function isRfc3339(value: unknown): boolean {
  return typeof value === 'string' && RFC3339.test(value) && !Number.isNaN(Date.parse(value.replace(' ', 'T')));
}

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/** Decodes, checks and validates a V1 request; notes on `entry` what it carried. */
export async function parseV1(request: CaptureRequest, entry: RequestRecord, limits: ParseLimits): Promise<V1Batch> {
  const encoding = checkHeaders(request, entry, limits.apiKey);
  const body = parseBody(await decode(request.raw, encoding, entry, limits.maxBodyBytes));
  entry.envelopeKeys = Object.keys(body);
  entry.createdAt = body.created_at;
  entry.historicalMigration = body.historical_migration === true;
  entry.events = body.batch.length;
  if (limits.keepUuids) entry.uuids = body.batch.map((event) => event.uuid as string);
  if (body.batch.length === 0) throw new HttpError(400, 'empty_batch', 'request batch is empty');
  if (!isRfc3339(body.created_at)) throw new HttpError(400, 'invalid_batch', `invalid batch: created_at is not valid RFC 3339: ${body.created_at}`);
  const seen = new Set<string>();
  for (const [index, event] of body.batch.entries()) {
    const uuid = (event.uuid as string).trim();
    if (uuid === '') throw new HttpError(400, 'missing_event_uuid', `batch[${index}]: event submitted without a uuid`, index);
    if (!UUID_REGEX.test(uuid)) throw new HttpError(400, 'invalid_event_uuid', `batch[${index}]: invalid event uuid: ${uuid}`, index);
    if (seen.has(uuid.toLowerCase())) throw new HttpError(400, 'duplicate_event_uuid', `batch[${index}]: duplicate event uuid: ${uuid}`, index);
    seen.add(uuid.toLowerCase());
  }
  return { events: body.batch, verdicts: body.batch.map((event) => judge(event, limits.maxEventBytes)) };
}

/** The key `results` holds an event's verdict under: its uuid as PostHog prints it (trimmed, lower case). */
export function resultKey(event: BatchItem): string {
  return String(event.uuid).trim().toLowerCase();
}

/** Authorization and the required headers (401, 400, 415 as PostHog answers them); returns the content encoding. */
function checkHeaders({ headers }: CaptureRequest, entry: RequestRecord, apiKey: string | undefined): string | undefined {
  const header = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const attempt = header('posthog-attempt');
  if (attempt !== undefined && /^\d+$/.test(attempt)) entry.attempt = Number(attempt);
  entry.postHogRequestId = header('posthog-request-id');
  const authorization = header('authorization');
  if (authorization === undefined) throw new HttpError(401, 'missing_authorization', 'request is missing the Authorization header');
  const missing = REQUIRED_HEADERS.filter((name) => header(name) === undefined);
  if (missing.length > 0) throw new HttpError(400, 'missing_required_headers', `request is missing required headers: ${missing.join(', ')}`);
  const bearer = /^bearer (.*)$/is.exec(authorization);
  if (!bearer) throw new HttpError(400, 'invalid_header_value', 'invalid header value: Authorization must use Bearer scheme');
  const token = bearer[1]!.trim();
  if (token === '' || token.startsWith('phx_') || (apiKey !== undefined && token !== apiKey)) {
    throw new HttpError(401, 'invalid_api_token', `API token is not valid: ${JSON.stringify(token)}`);
  }
  const contentType = header('content-type')!;
  if (contentType.split(';')[0]!.trim().toLowerCase() !== 'application/json') {
    throw new HttpError(415, 'unsupported_content_type', `unsupported content type: ${contentType}`);
  }
  const encoding = header('content-encoding')?.toLowerCase();
  if (encoding !== undefined && !(encoding in DECOMPRESSORS)) throw new HttpError(415, 'unsupported_encoding', `unsupported content encoding: ${encoding}`);
  const invalid = (message: string) => new HttpError(400, 'invalid_header_value', `invalid header value: ${message}`);
  if (!UUID_REGEX.test(entry.postHogRequestId!)) throw invalid(`PostHog-Request-Id is not a valid UUID: ${entry.postHogRequestId}`);
  if (!(Number(entry.attempt) >= 1)) throw invalid(`PostHog-Attempt must be a positive integer: ${attempt}`);
  const timestamp = header('posthog-request-timestamp');
  if (!isRfc3339(timestamp)) throw invalid(`PostHog-Request-Timestamp is not valid RFC 3339: ${timestamp}`);
  return encoding;
}

async function decode(raw: Buffer, encoding: string | undefined, entry: RequestRecord, maxBodyBytes: number): Promise<string> {
  entry.gzip = encoding === 'gzip';
  const decompress = encoding === undefined ? undefined : DECOMPRESSORS[encoding];
  if (!decompress) return raw.toString('utf8');
  try {
    return (await decompress(raw, { maxOutputLength: maxBodyBytes })).toString('utf8');
  } catch (error) {
    if (error instanceof RangeError || (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new HttpError(413, 'payload_too_large', `payload too large: decompressed body exceeds ${maxBodyBytes} bytes`);
    }
    throw new HttpError(400, 'request_decoding_error', `failed to decode request: ${encoding}: ${(error as Error).message}`);
  }
}

interface V1Body {
  created_at: string;
  historical_migration?: boolean;
  batch: BatchItem[];
}

/** The body's shape, as PostHog's strict deserializer takes it: any type mismatch is a 400 for the whole request. */
function parseBody(text: string): V1Body {
  if (text.length === 0) throw new HttpError(400, 'empty_body', 'request body is empty');
  const fail = (message: string) => new HttpError(400, 'request_parsing_error', `failed to parse request: ${message}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw fail((error as Error).message);
  }
  if (!isPlainObject(body)) throw fail('expected an object');
  if (typeof body.created_at !== 'string') throw fail('`created_at` must be a string');
  if (body.historical_migration !== undefined && typeof body.historical_migration !== 'boolean') throw fail('`historical_migration` must be a boolean');
  if (!Array.isArray(body.batch)) throw fail('`batch` must be an array');
  for (const [index, event] of body.batch.entries()) {
    if (!isPlainObject(event)) throw fail(`batch[${index}] is not an object`);
    for (const field of ['event', 'uuid', 'distinct_id', 'timestamp']) {
      if (typeof event[field] !== 'string') throw fail(`batch[${index}].${field} must be a string`);
    }
    for (const field of ['session_id', 'window_id']) {
      if (event[field] !== undefined && event[field] !== null && typeof event[field] !== 'string') throw fail(`batch[${index}].${field} must be a string`);
    }
  }
  return body as unknown as V1Body;
}

/** The verdict PostHog gives an event by itself: `drop` for an invalid one, `warning` for a known-bad distinct_id. */
function judge(event: BatchItem, maxEventBytes: number): V1Verdict {
  const drop = (details: string): V1Verdict => ({ result: 'drop', details });
  const distinctId = event.distinct_id.trim();
  if (event.event === '') return drop('missing_event_name');
  if (bytes(event.event) > MAX_NAME_BYTES) return drop('event_name_too_long');
  if (distinctId === '') return drop('missing_distinct_id');
  if (bytes(distinctId) > MAX_DISTINCT_ID_BYTES) return drop('distinct_id_too_large');
  if (!isRfc3339(event.timestamp)) return drop('invalid_event_timestamp');
  if (event.properties !== undefined && !isPlainObject(event.properties)) return drop('malformed_event_properties');
  if (!validOptions(event.options)) return drop('invalid_options');
  if (bytes(JSON.stringify(event)) > maxEventBytes) return drop('event_too_big');
  if (ILLEGAL_DISTINCT_IDS.has(distinctId.toLowerCase())) return { result: 'warning', details: 'person_processing_disabled' };
  return { result: 'ok' };
}

/** `options`: absent, null or an object whose known keys coerce (booleans, "true"/"0"..., numbers; a string tour id). */
function validOptions(options: unknown): boolean {
  if (options === undefined || options === null) return true;
  if (!isPlainObject(options)) return false;
  const bool = (v: unknown) => typeof v === 'boolean' || typeof v === 'number' || (typeof v === 'string' && /^\s*(true|false|1|0)\s*$/i.test(v));
  const checks: Record<string, (v: unknown) => boolean> = {
    cookieless_mode: bool,
    disable_skew_correction: bool,
    process_person_profile: bool,
    product_tour_id: (v) => typeof v === 'string' || Number.isInteger(v),
  };
  return Object.entries(checks).every(([key, ok]) => options[key] === undefined || options[key] === null || ok(options[key]));
}
