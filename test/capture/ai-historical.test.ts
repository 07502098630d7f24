/**
 * The AI endpoint (`POST /i/v0/ai/batch/`, posthog-node's captureAi) with its own per-event size limit,
 * `/batch/`'s limits, and `historical_migration` on every endpoint, driven by real posthog-node clients.
 */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { client, KEY, postJson, uuid, captureServerHooks } from './clients.ts';

let server: CaptureServer;
captureServerHooks((started) => (server = started));

const MB = 1_000_000;
const blob = (bytes: number) => ({ $ai_input: 'x'.repeat(bytes) });

describe('the AI endpoint', () => {
  it('captureAi() posts the v0 body to /i/v0/ai/batch/; capture() of an $ai_* event stays on /batch/', async () => {
    const { ph, errors } = client(server.url, 'v0');
    const aiUuid = ph.captureAi({ distinctId: 'user_1', event: '$ai_generation', uuid: uuid(1), properties: { $ai_model: 'm' } });
    ph.capture({ distinctId: 'user_1', event: '$ai_span', uuid: uuid(2) });
    await ph.flush();
    expect(errors).toEqual([]);
    expect(aiUuid).toBe(uuid(1));
    expect(server.requests.map((r) => [r.path, r.endpoint, r.status, r.uuids])).toEqual([
      ['/batch/', 'v0', 200, [uuid(2)]],
      ['/i/v0/ai/batch/', 'ai', 200, [uuid(1)]],
    ]);
    expect(server.requests[1]!.envelopeKeys).toEqual(['api_key', 'batch', 'sent_at']);
    expect(
      server
        .byUuid()
        .get(uuid(1))!
        .map((e) => [e.event, e.endpoint]),
    ).toEqual([['$ai_generation', 'ai']]);
    expect(server.events.find((e) => e.uuid === uuid(1))!.properties).toMatchObject({ $ai_model: 'm', $lib: 'posthog-node' });
  });

  it('in capture mode v1, analytics go to V1 while $ai_* events of capture() still go to /batch/', async () => {
    const { ph, errors } = client(server.url, 'v1');
    ph.capture({ distinctId: 'user_1', event: 'tool_called', uuid: uuid(1) });
    ph.capture({ distinctId: 'user_1', event: '$ai_generation', uuid: uuid(2) });
    ph.captureAi({ distinctId: 'user_1', event: '$ai_span', uuid: uuid(3) });
    await ph.flush();
    expect(errors).toEqual([]);
    expect(Object.fromEntries(server.events.map((e) => [e.uuid, e.endpoint]))).toEqual({ [uuid(1)]: 'v1', [uuid(2)]: 'v0', [uuid(3)]: 'ai' });
  });

  it('takes an $ai_* event of 2 MB, which /batch/ refuses (400 event_too_big over its 1 MB per event)', async () => {
    const { ph, errors } = client(server.url, 'v0');
    ph.captureAi({ distinctId: 'user_1', event: '$ai_generation', uuid: uuid(1), properties: blob(2 * MB) });
    await ph.flush();
    expect(errors).toEqual([]);
    expect(server.events.map((e) => [e.uuid, e.endpoint])).toEqual([[uuid(1), 'ai']]);

    ph.capture({ distinctId: 'user_1', event: '$ai_generation', uuid: uuid(2), properties: blob(2 * MB) });
    const error = (await ph.flush().then(
      () => undefined,
      (e: unknown) => e,
    )) as { status: number; text: Promise<string> };
    expect(error.status).toBe(400);
    expect(JSON.parse(await error.text)).toMatchObject({ code: 'event_too_big', index: 0 });
    expect(server.events).toHaveLength(1);
  });

  it('413 for an event over maxAiEventBytes: posthog-node halves the batch, then drops the event alone with an error', async () => {
    const small = await startCaptureServer({ apiKey: KEY, maxAiEventBytes: 10_000 });
    try {
      const { ph, errors } = client(small.url, 'v0');
      ph.captureAi({ distinctId: 'user_1', event: '$ai_generation', uuid: uuid(1), properties: blob(12_000) });
      ph.captureAi({ distinctId: 'user_1', event: '$ai_span', uuid: uuid(2) });
      await ph.flush();
      expect(small.requests.map((r) => [r.status, r.uuids])).toEqual([
        [413, [uuid(1), uuid(2)]],
        [413, [uuid(1)]],
        [200, [uuid(2)]],
      ]);
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/\$ai_generation \(\d+ bytes\) was rejected with 413 by \/i\/v0\/ai\/batch\/ on its own/),
      ]);
      expect(small.events.map((e) => e.uuid)).toEqual([uuid(2)]);
    } finally {
      await small.close();
    }
  });

  it('defaults to PostHog’s 8 MiB per AI event (413 ai_event_too_big beyond), and refuses events that are not $ai_*', async () => {
    const event = (name: string, bytes: number) => ({ event: name, distinct_id: 'user_1', uuid: uuid(1), properties: blob(bytes) });
    const post = (events: unknown[], gzip = false) => {
      const text = JSON.stringify({ api_key: KEY, batch: events });
      return postJson(`${server.url}/i/v0/ai/batch/`, gzip ? gzipSync(text) : text, {
        'Content-Type': 'application/json',
        ...(gzip && { 'Content-Encoding': 'gzip' }),
      });
    };
    expect((await post([event('$ai_trace', 8_388_608 - 200)], true)).status).toBe(200);
    expect(await post([event('$ai_trace', 8_388_608)], true)).toMatchObject({ status: 413, body: { code: 'ai_event_too_big', index: 0 } });
    expect(await post([event('tool_called', 10)])).toMatchObject({ status: 400, body: { code: 'non_ai_event', index: 0 } });
    expect(await post([])).toMatchObject({ status: 400, body: { code: 'empty_batch' } });
    expect(server.requests.map((r) => [r.endpoint, r.status])).toEqual([
      ['ai', 200],
      ['ai', 413],
      ['ai', 400],
      ['ai', 400],
    ]);
    expect(server.events).toHaveLength(1);
  });

  it('takes the request-level faults like /batch/', async () => {
    server.failNext(1, 503);
    server.overQuota();
    const { ph } = client(server.url, 'v0');
    ph.captureAi({ distinctId: 'user_1', event: '$ai_span', uuid: uuid(1) });
    expect(
      await ph.flush().then(
        () => 0,
        (e: { status: number }) => e.status,
      ),
    ).toBe(503);
    ph.captureAi({ distinctId: 'user_1', event: '$ai_span', uuid: uuid(2) });
    await ph.flush();
    expect(server.requests.map((r) => [r.endpoint, r.status, r.fault])).toEqual([
      ['ai', 503, 'fail'],
      ['ai', 200, 'overQuota'],
    ]);
    expect(server.events).toEqual([]);
  });
});

describe('/batch/ limits', () => {
  it('refuses a body over 20 MB with 413, which posthog-node answers by halving the batch', async () => {
    const { ph, errors } = client(server.url, 'v0', { disableCompression: true });
    for (let i = 0; i < 24; i++) ph.capture({ distinctId: `user_${i}`, event: 'e', uuid: uuid(i), properties: { blob: 'y'.repeat(900_000) } });
    await ph.flush();
    expect(errors).toEqual([]);
    expect(server.requests.map((r) => [r.status, r.bytes > 20 * MB])).toEqual([
      [413, true],
      [200, false],
      [200, false],
    ]);
    expect(server.countsByUuid().size).toBe(24);
  });
});

describe('historical_migration', () => {
  it('is recorded per request and per event on /batch/, the AI endpoint and V1', async () => {
    const historical = client(server.url, 'v0', { historicalMigration: true });
    const historicalV1 = client(server.url, 'v1', { historicalMigration: true });
    const live = client(server.url, 'v0');
    historical.ph.capture({ distinctId: 'user_1', event: 'backfilled', uuid: uuid(1) });
    historical.ph.captureAi({ distinctId: 'user_1', event: '$ai_generation', uuid: uuid(2) });
    historicalV1.ph.capture({ distinctId: 'user_1', event: 'backfilled', uuid: uuid(3) });
    live.ph.capture({ distinctId: 'user_1', event: 'live', uuid: uuid(4) });
    await historical.ph.flush();
    await historicalV1.ph.flush();
    await live.ph.flush();

    expect(server.requests.map((r) => [r.endpoint, r.historicalMigration])).toEqual([
      ['v0', true],
      ['ai', true],
      ['v1', true],
      ['v0', false],
    ]);
    expect(server.requests[2]!.envelopeKeys).toEqual(['created_at', 'historical_migration', 'batch']);
    expect(server.events.filter((e) => e.historicalMigration).map((e) => e.uuid)).toEqual([uuid(1), uuid(2), uuid(3)]);
    expect(server.events.filter((e) => !e.historicalMigration).map((e) => e.uuid)).toEqual([uuid(4)]);
  });
});
