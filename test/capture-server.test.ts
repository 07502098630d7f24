/**
 * The loopback capture endpoint (dev/capture-server.ts), driven by the real posthog-node client the way the
 * worker builds it, and by plain fetch for what posthog-node never sends. This file covers v0 (`/batch/`);
 * test/capture/ covers Capture V1, the AI endpoint and historical_migration.
 */
import { gzipSync } from 'node:zlib';
import { PostHog, type PostHogOptions } from 'posthog-node';
import { afterEach, describe, expect, it } from 'vitest';
import { captureServerHooks, client as captureClient } from './capture/clients.ts';
import { startCaptureServer, type CaptureServer } from '../dev/capture-server.ts';

const KEY = 'phc_test';

/** What posthog-node's flush() rejects with on an HTTP error (the class itself is not exported). */
interface PostHogHttpError extends Error {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  readonly response: Response;
  readonly text: Promise<string>;
}
/** What it rejects with when no response came (timeout, reset connection). */
interface PostHogNetworkError extends Error {
  readonly error: unknown;
}

let server: CaptureServer;
captureServerHooks((started) => (server = started));

/** A client built like the worker builds it: no timer, no retries, no flags, explicit flush. */
/** A posthog-node client in Capture v0 mode, built as the worker builds it (test/capture/clients.ts). */
function client(options: Partial<PostHogOptions> = {}, url = server.url): PostHog {
  return captureClient(url, 'v0', options).ph;
}

async function flushError<E = PostHogHttpError>(ph: PostHog): Promise<E> {
  return ph.flush().then(
    () => {
      throw new Error('flush() resolved, a rejection was expected');
    },
    (error: unknown) => error as E,
  );
}

function uuid(n: number): string {
  return `01900000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;
}

function wireEvent(n: number, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { event: 'tool_called', distinct_id: `user_${n}`, uuid: uuid(n), properties: { i: n }, timestamp: '2026-05-01T12:00:00.000Z', ...fields };
}

async function post(
  body: unknown,
  {
    gzip = false,
    header = gzip,
    path = '/batch/',
    method = 'POST',
    url = server.url,
  }: { gzip?: boolean; header?: boolean; path?: string; method?: string; url?: string } = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(header && { 'Content-Encoding': 'gzip' }) },
    ...(method !== 'GET' && { body: gzip ? gzipSync(text) : text }),
  });
  const raw = await res.text();
  return { status: res.status, body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {}, headers: res.headers };
}

const batch = (...events: unknown[]) => ({ api_key: KEY, batch: events, sent_at: new Date().toISOString() });

describe('what posthog-node sends', () => {
  it('arrives on POST /batch/, gzipped, with uuid, timestamp, properties and $groups as captured', async () => {
    const ph = client();
    const at = new Date('2026-05-01T12:00:00.000Z');
    ph.capture({
      distinctId: 'user_1',
      event: 'tool_called',
      uuid: uuid(1),
      timestamp: at,
      properties: { tool: 'grep', n: 3 },
      groups: { organization: 'org_1' },
    });
    ph.capture({ distinctId: 'user_2', event: 'other' });
    await ph.flush();

    expect(server.events).toHaveLength(2);
    const [first, second] = server.events;
    expect(first).toEqual({
      event: 'tool_called',
      distinct_id: 'user_1',
      uuid: uuid(1),
      timestamp: '2026-05-01T12:00:00.000Z',
      properties: {
        tool: 'grep',
        n: 3,
        $groups: { organization: 'org_1' },
        $lib: 'posthog-node',
        $lib_version: expect.any(String),
        $is_server: true,
        $geoip_disable: true,
      },
    });
    // No type / library / library_version on the wire: posthog-node strips them.
    expect(Object.keys(second!).sort()).toEqual(['distinct_id', 'event', 'properties', 'timestamp', 'uuid']);
    expect(second!.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/); // generated uuidv7

    const [request] = server.requests;
    expect(request).toMatchObject({
      method: 'POST',
      path: '/batch/',
      status: 200,
      outcome: 'accepted',
      events: 2,
      gzip: true,
      late: false,
      historicalMigration: false,
    });
    expect(request!.uuids).toEqual([uuid(1), second!.uuid]);
    expect(Date.parse(request!.sentAt!)).not.toBeNaN();
    // Metadata is there but not enumerable, so the event compares and serializes as it was sent.
    expect(first!.late).toBe(false);
    expect(first!.requestId).toBe(request!.id);
    expect(JSON.parse(JSON.stringify(first))).toEqual(first);
  });

  it('silently replaces a capture uuid that is not a UUID with a fresh one', async () => {
    const ph = client();
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: 'not-a-uuid' });
    await ph.flush();
    expect(server.events[0]!.uuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('sends plain JSON with disableCompression, and historical_migration with historicalMigration', async () => {
    const ph = client({ disableCompression: true, historicalMigration: true });
    ph.capture({ distinctId: 'user_1', event: 'plain', uuid: uuid(1) });
    await ph.flush();
    expect(server.requests[0]).toMatchObject({ gzip: false, status: 200, historicalMigration: true });
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(1)]);
  });

  it('never needs anything but /batch/ to capture and flush', async () => {
    const ph = client();
    for (let i = 0; i < 5; i++) ph.capture({ distinctId: `user_${i}`, event: 'e', groups: { organization: 'org_1' } });
    ph.identify({ distinctId: 'user_1', properties: { email: 'a@b.c' } });
    ph.groupIdentify({ groupType: 'organization', groupKey: 'org_1', properties: { name: 'Acme' } });
    await ph.flush();
    expect(server.requests.map((r) => r.path)).toEqual(['/batch/']);
    expect(server.events.map((e) => e.event)).toEqual(['e', 'e', 'e', 'e', 'e', '$identify', '$groupidentify']);
  });

  it('flushes everything queued in one request (flushAt sets the batch size)', async () => {
    const ph = client();
    for (let i = 0; i < 500; i++) ph.capture({ distinctId: `user_${i}`, event: 'e', uuid: uuid(i) });
    await ph.flush();
    expect(server.requests.map((r) => r.events)).toEqual([500]);
    expect(server.countsByUuid().size).toBe(500);
    expect(server.duplicates()).toEqual([]);
  });
});

describe('body decoding', () => {
  it('takes gzip by Content-Encoding, by magic bytes without the header, and plain JSON', async () => {
    expect((await post(batch(wireEvent(1)), { gzip: true })).status).toBe(200);
    expect((await post(batch(wireEvent(2)), { gzip: true, header: false })).status).toBe(200);
    const plain = await post(batch(wireEvent(3)));
    expect(plain).toMatchObject({ status: 200, body: { status: 1 } });
    expect(server.requests.map((r) => r.gzip)).toEqual([true, true, false]);
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(1), uuid(2), uuid(3)]);
  });

  it('accepts a single event or a bare array on /e/ and /capture/', async () => {
    expect((await post({ ...wireEvent(1), api_key: KEY }, { path: '/e/' })).status).toBe(200);
    expect((await post([{ ...wireEvent(2), api_key: KEY }], { path: '/capture/' })).status).toBe(200);
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(1), uuid(2)]);
  });

  it('answers 404 for other paths and 405 for GET, and logs them', async () => {
    expect((await post(batch(wireEvent(1)), { path: '/flags/?v=2' })).status).toBe(404);
    expect((await post(undefined, { method: 'GET' })).status).toBe(405);
    expect(server.requests.map((r) => [r.path, r.status])).toEqual([
      ['/flags/', 404],
      ['/batch/', 405],
    ]);
    expect(server.events).toEqual([]);
  });
});

describe('validation (the whole request is rejected, nothing recorded)', () => {
  const cases: [string, unknown, string][] = [
    ['an empty distinct_id', batch(wireEvent(1, { distinct_id: '' })), 'empty_distinct_id'],
    ['a distinct_id of 201 characters', batch(wireEvent(1, { distinct_id: 'x'.repeat(201) })), 'distinct_id_too_long'],
    ['a missing distinct_id', batch(wireEvent(1, { distinct_id: undefined })), 'missing_distinct_id'],
    ['a numeric distinct_id', batch(wireEvent(1, { distinct_id: 42 })), 'invalid_distinct_id'],
    ['a bad uuid', batch(wireEvent(1, { uuid: 'not-a-uuid' })), 'invalid_uuid'],
    ['properties that are a string', batch(wireEvent(1, { properties: 'nope' })), 'invalid_properties'],
    ['properties that are an array', batch(wireEvent(1, { properties: [1] })), 'invalid_properties'],
    ['properties that are null', batch(wireEvent(1, { properties: null })), 'invalid_properties'],
    ['a missing event name', batch(wireEvent(1, { event: undefined })), 'missing_event_name'],
    ['an empty event name', batch(wireEvent(1, { event: '' })), 'missing_event_name'],
    ['a numeric timestamp', batch(wireEvent(1, { timestamp: 1 })), 'invalid_timestamp'],
    ['an event that is not an object', batch('tool_called'), 'invalid_event'],
    ['an empty batch', batch(), 'empty_batch'],
    ['a batch that is not an array', { api_key: KEY, batch: {} }, 'request_parsing_error'],
    ['a body that is not JSON', '{"api_key": "phc_test", "batch": [', 'request_parsing_error'],
  ];

  it.each(cases)('400 for %s', async (_, body, code) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ type: 'validation_error', code, detail: expect.any(String) });
    expect(server.events).toEqual([]);
    expect(server.requests[0]).toMatchObject({ status: 400, outcome: 'rejected', error: res.body.detail });
  });

  it('400 for a gzip header on a body that is not gzip', async () => {
    const res = await post(batch(wireEvent(1)), { header: true });
    expect(res).toMatchObject({ status: 400, body: { code: 'request_decoding_error' } });
  });

  it('takes an event without properties (or uuid, or timestamp), recording properties as {}', async () => {
    expect((await post(batch({ event: 'bare', distinct_id: 'user_1' }))).status).toBe(200);
    expect(server.events).toEqual([{ event: 'bare', distinct_id: 'user_1', properties: {} }]);
  });

  it('rejects the whole batch for one bad event, naming it', async () => {
    const res = await post(batch(wireEvent(1), wireEvent(2), wireEvent(3, { distinct_id: '' }), wireEvent(4)));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'empty_distinct_id', index: 2 });
    expect(res.body.detail).toMatch(/^batch\[2\]: /);
    expect(server.events).toEqual([]);
    expect(server.requests[0]!.events).toBe(4);
  });

  it('accepts a distinct_id of exactly 200 characters, counted as characters not bytes', async () => {
    expect((await post(batch(wireEvent(1, { distinct_id: 'x'.repeat(200) })))).status).toBe(200);
    expect((await post(batch(wireEvent(2, { distinct_id: 'é'.repeat(200) })))).status).toBe(200);
    expect((await post(batch(wireEvent(3, { distinct_id: '😀'.repeat(200) })))).status).toBe(200);
    expect(server.events).toHaveLength(3);
  });

  it('rejects posthog-node’s flush with 400 for an invalid event (distinct_id too long)', async () => {
    const ph = client();
    ph.capture({ distinctId: 'x'.repeat(201), event: 'e' });
    const error = await flushError(ph);
    expect(error.name).toBe('PostHogFetchHttpError');
    expect(error.status).toBe(400);
    expect(JSON.parse(await error.text)).toMatchObject({ code: 'distinct_id_too_long' });
  });

  it('401 for a missing api key (always) and a wrong one (when apiKey is set)', async () => {
    expect(await post({ batch: [wireEvent(1)] })).toMatchObject({ status: 401, body: { code: 'no_token' } });
    expect(await post({ api_key: '', batch: [wireEvent(1)] })).toMatchObject({ status: 401, body: { code: 'no_token' } });
    expect(await post({ api_key: 'phc_other', batch: [wireEvent(1)] })).toMatchObject({ status: 401, body: { code: 'invalid_token' } });
    const ph = new PostHog('phc_other', { host: server.url, flushAt: 1000, flushInterval: 0, fetchRetryCount: 0 });
    ph.capture({ distinctId: 'user_1', event: 'e' });
    expect((await flushError(ph)).status).toBe(401);
    expect(server.events).toEqual([]);
  });

  it('without the apiKey option takes any key, but still needs one', async () => {
    const open = await startCaptureServer();
    try {
      expect((await post({ api_key: 'phc_any', batch: [wireEvent(1)] }, { url: open.url })).status).toBe(200);
      expect((await post({ batch: [wireEvent(2)] }, { url: open.url })).status).toBe(401);
      expect(open.events.map((e) => e.uuid)).toEqual([uuid(1)]);
    } finally {
      await open.close();
    }
  });

  it('400 for an event over maxEventBytes, 413 for a body over maxBodyBytes (compressed or inflated)', async () => {
    const small = await startCaptureServer({ apiKey: KEY, maxEventBytes: 2_000, maxBodyBytes: 10_000 });
    try {
      const big = await post(batch(wireEvent(1, { properties: { blob: 'x'.repeat(3_000) } })), { url: small.url });
      expect(big).toMatchObject({ status: 400, body: { code: 'event_too_big', index: 0 } });
      const many = Array.from({ length: 20 }, (_, i) => wireEvent(i, { properties: { blob: 'y'.repeat(1_000) } }));
      expect((await post(batch(...many), { url: small.url })).status).toBe(413);
      // 20 kB of JSON gzips to well under 10 kB: the limit applies to the inflated body too.
      const zipped = await post(batch(...many), { url: small.url, gzip: true });
      expect(zipped.status).toBe(413);
      expect(small.requests.map((r) => r.status)).toEqual([400, 413, 413]);
      expect(small.events).toEqual([]);
    } finally {
      await small.close();
    }
  });
});

describe('faults', () => {
  it('failNext: flush() rejects with PostHogFetchHttpError and .status, and posthog-node drops the batch', async () => {
    server.failNext(2, 503);
    expect(server.pendingFaults).toBe(2);
    const ph = client();
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    const error = await flushError(ph);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('PostHogFetchHttpError');
    expect(error.status).toBe(503);
    expect(error.message).toMatch(/status=503/);
    expect(JSON.parse(await error.text)).toEqual({ type: 'injected_fault', detail: 'injected HTTP 503' });
    // After an HTTP error the batch is gone from the client's queue: flushing again sends nothing.
    await ph.flush();
    expect(server.requests).toHaveLength(1);

    ph.capture({ distinctId: 'user_2', event: 'e', uuid: uuid(2) });
    expect((await flushError(ph)).status).toBe(503);
    ph.capture({ distinctId: 'user_3', event: 'e', uuid: uuid(3) });
    await ph.flush();
    expect(server.pendingFaults).toBe(0);
    expect(server.requests.map((r) => [r.status, r.fault, r.uuids])).toEqual([
      [503, 'fail', [uuid(1)]],
      [503, 'fail', [uuid(2)]],
      [200, undefined, [uuid(3)]],
    ]);
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(3)]);
  });

  it('429 carries Retry-After when asked (error.retryAfterMs), and not otherwise', async () => {
    server.failNext(1, 429, { retryAfter: 2 });
    server.failNext(1, 429);
    const ph = client();
    ph.capture({ distinctId: 'user_1', event: 'e' });
    const limited = await flushError(ph);
    expect(limited.status).toBe(429);
    expect(limited.response.headers.get('retry-after')).toBe('2');
    expect(limited.retryAfterMs).toBe(2_000);
    ph.capture({ distinctId: 'user_1', event: 'e' });
    const bare = await flushError(ph);
    expect(bare.status).toBe(429);
    expect(bare.retryAfterMs).toBeUndefined();
  });

  it('posthog-node’s own retries ignore Retry-After: they wait fetchRetryDelay', async () => {
    server.failNext(1, 429, { retryAfter: 30 });
    const ph = client({ fetchRetryCount: 1, fetchRetryDelay: 50 });
    ph.capture({ distinctId: 'user_1', event: 'e' });
    await ph.flush();
    const [limited, accepted] = server.requests;
    expect([limited!.status, accepted!.status]).toEqual([429, 200]);
    expect(accepted!.at - limited!.at).toBeLessThan(2_000);
  });

  it.each([500, 502, 503, 504, 408, 429])('posthog-node retries HTTP %i (when fetchRetryCount > 0)', async (status) => {
    server.failNext(2, status);
    const ph = client({ fetchRetryCount: 2, fetchRetryDelay: 10 });
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await ph.flush();
    expect(server.requests.map((r) => r.status)).toEqual([status, status, 200]);
    expect(server.events).toHaveLength(1);
  });

  it.each([400, 401, 403, 404, 413])('posthog-node does not retry HTTP %i', async (status) => {
    server.failNext(1, status);
    const ph = client({ fetchRetryCount: 2, fetchRetryDelay: 10 });
    ph.capture({ distinctId: 'user_1', event: 'e' });
    expect((await flushError(ph)).status).toBe(status);
    expect(server.requests.map((r) => r.status)).toEqual([status]);
  });

  it('413 on a batch of several: posthog-node halves the batch and resends within the same flush', async () => {
    server.failNext(1, 413);
    const ph = client();
    for (let i = 0; i < 4; i++) ph.capture({ distinctId: `user_${i}`, event: 'e', uuid: uuid(i) });
    await ph.flush();
    expect(server.requests.map((r) => [r.status, r.events])).toEqual([
      [413, 4],
      [200, 2],
      [200, 2],
    ]);
    expect(server.duplicates()).toEqual([]);
    expect(server.countsByUuid().size).toBe(4);
  });

  it('failFor: every request in the window fails, then requests succeed', async () => {
    server.failFor(300, 500, { retryAfter: 1 });
    const during = await Promise.all([post(batch(wireEvent(1))), post(batch(wireEvent(2)))]);
    expect(during.map((r) => [r.status, r.headers.get('retry-after')])).toEqual([
      [500, '1'],
      [500, '1'],
    ]);
    await new Promise((r) => setTimeout(r, 350)); // the scenario: the 300 ms window passes
    expect((await post(batch(wireEvent(3)))).status).toBe(200);
    expect(server.requests.map((r) => [r.status, r.fault ?? null, r.events])).toEqual([
      [500, 'failFor', 1],
      [500, 'failFor', 1],
      [200, null, 1],
    ]);
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(3)]);
  });

  it('rejectEventsWhere: 400 for any batch holding the poison event, nothing of it recorded', async () => {
    server.rejectEventsWhere((e) => e.event === 'poison');
    const ph = client();
    ph.capture({ distinctId: 'user_1', event: 'fine', uuid: uuid(1) });
    ph.capture({ distinctId: 'user_2', event: 'poison', uuid: uuid(2) });
    const error = await flushError(ph);
    expect(error.status).toBe(400);
    expect(JSON.parse(await error.text)).toMatchObject({ code: 'rejected_event', index: 1, detail: expect.stringContaining(uuid(2)) });
    expect(server.events).toEqual([]);

    ph.capture({ distinctId: 'user_1', event: 'fine', uuid: uuid(1) });
    await ph.flush();
    ph.capture({ distinctId: 'user_2', event: 'poison', uuid: uuid(2) });
    expect((await flushError(ph)).status).toBe(400);
    expect(server.requests.map((r) => [r.status, r.fault ?? null])).toEqual([
      [400, 'reject'],
      [200, null],
      [400, 'reject'],
    ]);
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(1)]);
  });

  it('rejectEventsWhere with times and a status lapses after that many requests', async () => {
    server.rejectEventsWhere((e) => e.uuid === uuid(7), { status: 422, times: 1, message: 'bad seven' });
    expect(await post(batch(wireEvent(7)))).toMatchObject({ status: 422, body: { detail: 'bad seven' } });
    expect((await post(batch(wireEvent(7)))).status).toBe(200);
  });

  it('delayNext past the client timeout: flush() rejects with a network error, the batch is recorded late and stays queued', async () => {
    server.delayNext(1, 1_000);
    const ph = client({ requestTimeout: 200 });
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    const error = await flushError<PostHogNetworkError>(ph);
    expect(error.name).toBe('PostHogFetchNetworkError');
    expect(error.error).toMatchObject({ name: 'AbortError', message: 'Request timed out after 200ms' });
    expect('status' in error).toBe(false);

    await server.waitFor(1, { timeoutMs: 2_000 }); // the server saw the client leave
    expect(server.events[0]!.late).toBe(true);
    expect(server.requests[0]).toMatchObject({ status: 200, fault: 'delay', clientGone: true, late: true, outcome: 'accepted' });

    // A network error keeps the batch in posthog-node's queue: the next flush resends the same uuid.
    await ph.flush();
    expect(server.requests.map((r) => r.uuids)).toEqual([[uuid(1)], [uuid(1)]]);
    expect(server.duplicates()).toEqual([{ uuid: uuid(1), count: 2, late: 1 }]);
    expect(server.duplicates({ ignoreLate: true })).toEqual([]);
    expect(server.countsByUuid({ ignoreLate: true }).get(uuid(1))).toBe(1);
  });

  it('delayNext within the client timeout: a slow 200', async () => {
    server.delayNext(1, 300);
    const ph = client({ requestTimeout: 2_000 });
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    const started = Date.now();
    await ph.flush();
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(server.events[0]!.late).toBe(false);
    expect(server.requests[0]).toMatchObject({ status: 200, fault: 'delay', clientGone: false, late: false });
  });

  it('dropNext: flush() rejects with a network error, nothing recorded, and the retry delivers once', async () => {
    server.dropNext(1);
    const ph = client();
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    const error = await flushError<PostHogNetworkError>(ph);
    expect(error.name).toBe('PostHogFetchNetworkError');
    expect(error.error).toBeInstanceOf(TypeError); // undici's "fetch failed", the socket error as its cause
    expect(server.events).toEqual([]);
    expect(server.requests[0]).toMatchObject({ status: 0, fault: 'drop', outcome: 'dropped', events: 1 });
    await ph.flush();
    expect(server.events.map((e) => [e.uuid, e.late])).toEqual([[uuid(1), false]]);
  });

  it('dropNext with ingested: the response is lost but the events were kept (late)', async () => {
    server.dropNext(1, { ingested: true });
    const ph = client();
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await flushError<PostHogNetworkError>(ph);
    await ph.flush();
    expect(server.duplicates()).toEqual([{ uuid: uuid(1), count: 2, late: 1 }]);
    expect(server.duplicates({ ignoreLate: true })).toEqual([]);
  });

  it('consumes one-shot faults one per request, in the order they were asked', async () => {
    server.failNext(1, 503);
    server.dropNext(1);
    server.delayNext(1, 50);
    server.failNext(1, 429, { retryAfter: 1 });
    expect(server.pendingFaults).toBe(4);
    expect((await post(batch(wireEvent(1)))).status).toBe(503);
    await expect(post(batch(wireEvent(2)))).rejects.toThrow();
    expect((await post(batch(wireEvent(3)))).status).toBe(200);
    expect((await post(batch(wireEvent(4)))).status).toBe(429);
    expect((await post(batch(wireEvent(5)))).status).toBe(200);
    expect(server.pendingFaults).toBe(0);
    expect(server.requests.map((r) => r.fault ?? null)).toEqual(['fail', 'drop', 'delay', 'fail', null]);
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(3), uuid(5)]);
  });

  it('overQuota: answers 200 {"status":1} and keeps nothing, like PostHog over its billing limit', async () => {
    server.overQuota();
    const ph = client();
    ph.capture({ distinctId: 'user_1', event: 'e' });
    await ph.flush();
    expect(server.events).toEqual([]);
    expect(server.requests[0]).toMatchObject({ status: 200, outcome: 'over-quota', fault: 'overQuota' });
    server.overQuota(false);
    ph.capture({ distinctId: 'user_1', event: 'e' });
    await ph.flush();
    expect(server.events).toHaveLength(1);
  });

  it('reset() clears events, requests and every fault', async () => {
    await post(batch(wireEvent(1)));
    server.failNext(1, 500);
    server.failFor(10_000, 500);
    server.rejectEventsWhere(() => true);
    server.overQuota();
    server.reset();
    expect(server.events).toEqual([]);
    expect(server.requests).toEqual([]);
    expect(server.pendingFaults).toBe(0);
    expect((await post(batch(wireEvent(2)))).status).toBe(200);
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(2)]);
  });

  it('clearFaults() ends every fault and keeps what was recorded', async () => {
    await post(batch(wireEvent(1)));
    server.failNext(1, 500);
    server.failFor(10_000, 503);
    server.rejectEventsWhere(() => true);
    server.overQuota();
    server.clearFaults();
    expect(server.pendingFaults).toBe(0);
    expect((await post(batch(wireEvent(2)))).status).toBe(200);
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(1), uuid(2)]);
    expect(server.requests.map((r) => r.status)).toEqual([200, 200]);
  });
});

describe('waitFor', () => {
  it('resolves on a count or a predicate, with the events', async () => {
    const waiting = server.waitFor(3, { timeoutMs: 2_000 });
    const named = server.waitFor((events) => events.some((e) => e.event === 'last'), { timeoutMs: 2_000 });
    const ph = client();
    ph.capture({ distinctId: 'user_1', event: 'a' });
    await ph.flush();
    ph.capture({ distinctId: 'user_1', event: 'b' });
    ph.capture({ distinctId: 'user_1', event: 'last' });
    await ph.flush();
    expect((await waiting).map((e) => e.event)).toEqual(['a', 'b', 'last']);
    expect((await named).length).toBe(3);
    // Already satisfied: resolves at once.
    expect(await server.waitFor(1)).toHaveLength(3);
    expect(await server.waitForRequests(2)).toHaveLength(2);
  });

  it('times out with a message that says what it waited for and what the server saw', async () => {
    server.failNext(1, 503);
    await post(batch(wireEvent(1)));
    await post(batch(wireEvent(2)));
    const started = Date.now();
    await expect(server.waitFor(5, { timeoutMs: 150, what: 'the backlog' })).rejects.toThrow(
      /timed out after 150 ms waiting for the backlog \(at least 5 accepted events\); 1 events accepted \(0 late\), 2 requests \(503×1, 200×1\); last: #\d+ \/batch\/ 503 \[fail\] 1 events: injected HTTP 503/,
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    await expect(
      server.waitFor(
        function noPoison(events) {
          return events.length > 99;
        },
        { timeoutMs: 50 },
      ),
    ).rejects.toThrow(/waiting for predicate noPoison/);
  });

  it('rejects when the predicate throws', async () => {
    await expect(
      server.waitFor(() => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
  });
});

describe('close()', () => {
  let other: CaptureServer | undefined;
  afterEach(async () => {
    await other?.close();
    other = undefined;
  });

  it('does not hang on keep-alive connections, in-flight delays or pending waits', async () => {
    other = await startCaptureServer({ apiKey: KEY });
    const ph = client({}, other.url);
    ph.capture({ distinctId: 'user_1', event: 'e' });
    await ph.flush(); // leaves an idle keep-alive connection in undici's pool
    for (let i = 0; i < 3; i++) expect((await post(batch(wireEvent(i)), { url: other.url })).status).toBe(200);
    other.delayNext(1, 30_000);
    const inFlight = post(batch(wireEvent(9)), { url: other.url }).then(
      () => 'answered',
      (error: unknown) => error,
    );
    const pending = other.waitFor(100, { timeoutMs: 30_000 }).then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await other.waitForRequests(5, { timeoutMs: 2_000 });

    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await inFlight).toBeInstanceOf(TypeError); // fetch failed: the server destroyed the socket
    expect(await pending).toMatchObject({ message: 'capture server closed while waiting' });
    expect(other.events).toHaveLength(4); // the delayed batch is not recorded after close
    await other.close(); // idempotent
    await expect(fetch(`${other.url}/batch/`, { method: 'POST', body: '{}' })).rejects.toThrow();
  });
});

describe('keepEvents: false (benchmarks)', () => {
  it('counts accepted events and reports each batch without keeping them', async () => {
    const seen: number[] = [];
    const sink = await startCaptureServer({ keepEvents: false, onAccepted: (batch) => seen.push(batch.length) });
    try {
      const body = JSON.stringify({
        api_key: 'k',
        batch: [1, 2, 3].map((i) => ({ event: 'e', distinct_id: `d${i}`, uuid: `0192f1c4-0000-7000-8000-00000000000${i}`, properties: {} })),
      });
      const res = await fetch(`${sink.url}/batch/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(200);
      expect(sink.accepted).toBe(3);
      expect(sink.events).toEqual([]);
      expect(sink.requests[0]!.uuids).toEqual([]);
      expect(seen).toEqual([3]);
      sink.reset();
      expect(sink.accepted).toBe(0);
    } finally {
      await sink.close();
    }
  });
});
