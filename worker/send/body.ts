/**
 * Reading a request body posthog-node built for the events it carries (worker/send/sender.ts checks each request
 * against the events posthog-node said it serialised into it): the JSON text, gzipped or not, scanned once.
 */
import { promisify } from 'node:util';
import { gunzip as gunzipCallback } from 'node:zlib';

const gunzip = promisify(gunzipCallback);

/** The JSON text of a request body: posthog-node hands over a string (its compression is off); bytes, gzipped or not, are read too. */
async function bodyText(body: unknown): Promise<string> {
  if (typeof body === 'string') return body;
  let bytes: Buffer;
  if (body instanceof Uint8Array) bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  else if (body instanceof Blob) bytes = Buffer.from(await body.arrayBuffer());
  else throw new Error(`unexpected request body type ${Object.prototype.toString.call(body)}`);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await gunzip(bytes);
  return bytes.toString('utf8');
}

/**
 * Which of `expected` (the uuids of the events posthog-node serialised into a request, in order) the request's
 * body carries as an event's `"uuid"` field, gzip or not. Each is looked for after the one before it, so the
 * whole body is read once; an event missing from the body is left out (never counted as accepted).
 */
export async function uuidsInBody(body: unknown, expected: readonly string[]): Promise<string[]> {
  const text = await bodyText(body);
  const found: string[] = [];
  let from = 0;
  for (const uuid of expected) {
    const at = uuidField(text, uuid, from);
    if (at === -1) continue;
    found.push(uuid);
    from = at;
  }
  return found;
}

const UUID_KEY = '"uuid":"';

/** Where `text` has the field `"uuid":"<uuid>"` from `from` on, or -1 (found by the uuid itself: no search string is built per event). */
function uuidField(text: string, uuid: string, from: number): number {
  for (let at = text.indexOf(uuid, from + UUID_KEY.length); at !== -1; at = text.indexOf(uuid, at + 1)) {
    if (text.charCodeAt(at + uuid.length) === 0x22 && text.startsWith(UUID_KEY, at - UUID_KEY.length)) return at - UUID_KEY.length;
  }
  return -1;
}
