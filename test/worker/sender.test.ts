/**
 * sendBatch with the real posthog-node against the capture server: what goes on the wire for a batch, and
 * that the report says exactly which events were in an accepted request. These tests pin posthog-node's
 * behaviour that the delivery promise relies on: a posthog-node upgrade that changes the wire (more
 * requests, other fields, retries, its own split after a 413) fails here.
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PostHog } from 'posthog-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { uuidsInBody } from '../../worker/send/body.ts';
import { sendBatch, type WireEvent } from '../../worker/send/sender.ts';

const KEY = 'phc_sender';
let capture: CaptureServer;
const posthogNodeVersion = (JSON.parse(readFileSync(new URL('../../node_modules/posthog-node/package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

beforeAll(async () => {
  capture = await startCaptureServer({ apiKey: KEY });
});
afterAll(() => capture.close());
beforeEach(() => capture.reset());

function batch(n: number, from = 0): WireEvent[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return {
      uuid: `0190a000-0000-7000-8000-${String(i).padStart(12, '0')}`,
      event: 'tool_called',
      distinctId: `user_${i}`,
      properties: { i, nested: { ok: true } },
      groups: (i % 2 === 0 ? { organization: `org_${i}` } : {}) as Record<string, string>,
      timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i % 60, 123)),
    };
  });
}

const target = (host = capture.url, requestTimeoutMs = 2_000) => ({ apiKey: KEY, host, requestTimeoutMs });

describe('what posthog-node puts on the wire for a batch', () => {
  it('one gzip POST /batch/ with {api_key, batch, sent_at}; each event exactly our uuid, name, distinct id, timestamp and properties plus the library’s own', async () => {
    const events = batch(25);
    const report = await sendBatch(target(), events);
    expect(capture.requests).toHaveLength(1);
    const [request] = capture.requests;
    expect(request).toMatchObject({ method: 'POST', path: '/batch/', gzip: true, status: 200, events: 25 });
    expect([...request!.envelopeKeys!].sort()).toEqual(['api_key', 'batch', 'sent_at']);
    expect(request!.uuids).toEqual(events.map((e) => e.uuid));
    for (const [k, received] of capture.events.entries()) {
      const sent = events[k]!;
      expect(Object.keys(received).sort()).toEqual(['distinct_id', 'event', 'properties', 'timestamp', 'uuid']);
      expect(received).toMatchObject({ uuid: sent.uuid, event: sent.event, distinct_id: sent.distinctId, timestamp: sent.timestamp.toISOString() });
      const groups = Object.keys(sent.groups).length > 0 ? { $groups: sent.groups } : {};
      expect(received.properties).toEqual({
        ...sent.properties,
        ...groups,
        $lib: 'posthog-node',
        $lib_version: posthogNodeVersion,
        $is_server: true,
        $geoip_disable: true,
      });
    }
    expect(report.requests.map((r) => r.uuids)).toEqual([events.map((e) => e.uuid)]);
    expect(report).toMatchObject({ accepted: events.map((e) => e.uuid), unsent: [] });
    expect(report.failed).toBeUndefined();
  });

  it('each event is what posthog-node’s public capture() would have sent for it (the worker enqueues through its synchronous path)', async () => {
    const events = batch(6);
    events[2]!.properties = { ...events[2]!.properties, $groups: events[2]!.groups };
    await sendBatch(target(), events);
    const ours = capture.events.map((e) => ({ ...e }));
    capture.reset();
    const client = new PostHog(KEY, { host: capture.url, flushAt: 100, flushInterval: 0, disableGeoip: true });
    for (const e of events) {
      const groups = Object.keys(e.groups).length > 0 ? e.groups : undefined;
      client.capture({ uuid: e.uuid, event: e.event, distinctId: e.distinctId, properties: e.properties, groups, timestamp: e.timestamp });
    }
    await client.shutdown();
    expect(capture.events).toHaveLength(events.length);
    expect(ours).toEqual(capture.events);
  });

  it('a 413: posthog-node halves the batch by itself and sends both halves; the report accounts for each request', async () => {
    capture.failNext(1, 413);
    const events = batch(10);
    const report = await sendBatch(target(), events);
    expect(capture.requests.map((r) => [r.status, r.events])).toEqual([
      [413, 10],
      [200, 5],
      [200, 5],
    ]);
    expect(report.requests.map((r) => [r.verdict.kind, r.uuids.length])).toEqual([
      ['rejected', 10],
      ['accepted', 5],
      ['accepted', 5],
    ]);
    expect(report.accepted).toEqual(events.map((e) => e.uuid));
    expect(report.failed).toBeUndefined();
  });

  it('a 413, then a 503 on the first half: only the failed half is charged, the rest never went out', async () => {
    capture.failNext(1, 413);
    capture.failNext(1, 503);
    const events = batch(10);
    const report = await sendBatch(target(), events);
    expect(capture.requests.map((r) => [r.status, r.events])).toEqual([
      [413, 10],
      [503, 5],
    ]);
    expect(report.accepted).toEqual([]);
    expect(report.failed).toMatchObject({ verdict: { kind: 'target', status: 503 }, uuids: events.slice(0, 5).map((e) => e.uuid) });
    expect(report.unsent).toEqual(events.slice(5).map((e) => e.uuid));
  });

  it('a 5xx: no retry by posthog-node (one request), the whole batch failed', async () => {
    capture.failNext(1, 502);
    const events = batch(4);
    const report = await sendBatch(target(), events);
    expect(capture.requests).toHaveLength(1);
    expect(report).toMatchObject({ accepted: [], failed: { verdict: { kind: 'target', status: 502 }, uuids: events.map((e) => e.uuid) }, unsent: [] });
  });
});

describe('only PostHog’s capture answer is acceptance', () => {
  it.each([
    ['a web page with 200', 200, { raw: '<!doctype html><p>hello</p>', headers: { 'Content-Type': 'text/html' } }, /without PostHog's capture answer/],
    ['an empty 200', 200, { raw: '' }, /without PostHog's capture answer/],
    ['a 204', 204, { raw: '' }, /HTTP 204/],
    ['a redirect', 307, { raw: '', headers: { Location: 'https://eu.i.posthog.com/batch/' } }, /redirect to "https:\/\/eu\.i\.posthog\.com\/batch\/"/],
  ])('%s: nothing accepted, and posthog-node sends nothing more', async (_label, status, options, message) => {
    capture.failNext(1, status, options);
    const events = batch(3);
    const report = await sendBatch(target(), events);
    expect(report.accepted).toEqual([]);
    expect(report.failed?.uuids).toEqual(events.map((e) => e.uuid));
    expect(report.failed?.verdict).toMatchObject({ kind: 'target', message: expect.stringMatching(message) });
    // not followed, not retried
    expect(capture.requests.map((r) => r.method)).toEqual(['POST']);
  });

  it('a request that times out: a target failure, nothing accepted (even if the server ingests it later)', async () => {
    capture.delayNext(1, 1_500);
    const events = batch(2);
    const report = await sendBatch(target(capture.url, 300), events);
    expect(report.accepted).toEqual([]);
    expect(report.failed?.verdict).toMatchObject({ kind: 'target', message: expect.stringMatching(/no answer from PostHog: .*timed out/i) });
  });

  it('a connection refused: a target failure naming it', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const report = await sendBatch(target(`http://127.0.0.1:${port}`), batch(2));
    expect(report.accepted).toEqual([]);
    expect(report.failed?.verdict).toMatchObject({ kind: 'target', message: expect.stringMatching(/network error talking to PostHog: .*ECONNREFUSED/) });
  });

  it('a rejection (400) of a batch: the failed request carries every event, for bisection', async () => {
    capture.rejectEventsWhere((e) => e.distinct_id === 'user_1');
    const events = batch(3);
    const report = await sendBatch(target(), events);
    expect(report.failed).toMatchObject({ verdict: { kind: 'rejected', status: 400 }, uuids: events.map((e) => e.uuid) });
  });
});

describe('reading a request body for the events posthog-node serialised into it', () => {
  const [a, b, c] = ['0190a000-0000-7000-8000-00000000000a', '0190a000-0000-7000-8000-00000000000b', '0190a000-0000-7000-8000-00000000000c'];
  const body = (events: object[]) => JSON.stringify({ api_key: KEY, batch: events, sent_at: '2026-01-01T00:00:00.000Z' });

  it('finds each event of the request by its uuid field, in order, in plain or gzipped bodies', async () => {
    const text = body([
      { event: 'e', uuid: a },
      { event: 'e', uuid: b },
      { event: 'e', uuid: c },
    ]);
    expect(await uuidsInBody(text, [a, b, c])).toEqual([a, b, c]);
    expect(await uuidsInBody(gzipSync(text), [a, b, c])).toEqual([a, b, c]);
    expect(await uuidsInBody(new Blob([gzipSync(text)]), [a, b, c])).toEqual([a, b, c]);
  });

  it('leaves out an event the body does not carry as a uuid field, even when its uuid appears elsewhere in the body', async () => {
    const text = body([
      { event: 'e', uuid: a, properties: { parent_id: c, note: `"uuid": "${c}"` } },
      { event: 'e', uuid: b },
    ]);
    expect(await uuidsInBody(text, [a, b, c])).toEqual([a, b]);
    expect(await uuidsInBody(body([]), [a])).toEqual([]);
    // an event's uuid quoted earlier in the body (as another field's value) does not hide its own field further on
    const quotedFirst = body([
      { event: 'e', uuid: a, properties: { parent_id: b, uuid_list: `"uuid":"${b}` } },
      { event: 'e', uuid: b },
    ]);
    expect(await uuidsInBody(quotedFirst, [a, b])).toEqual([a, b]);
  });

  it('a body that is not text, JSON bytes or a Blob is an error (nothing of the request counts as accepted)', async () => {
    await expect(uuidsInBody(42, [a])).rejects.toThrow(/unexpected request body type/);
  });
});

describe('Capture V1 (captureMode v1): the verdicts read off the wire', () => {
  const v1 = () => ({ ...target(), captureMode: 'v1' as const });

  it('one request to /i/v1/analytics/events; each event by its verdict; posthog-node re-sends nothing (not a retry either) and its env is left alone', async () => {
    const events = batch(5);
    const n = (e: { properties?: Record<string, unknown> }) => Number(e.properties?.i);
    capture.verdictWhere((e) => n(e) === 1, 'warning', { details: 'person_processing_disabled' });
    capture.verdictWhere((e) => n(e) === 2, 'drop', { details: 'billing_limit_exceeded' });
    capture.verdictWhere((e) => n(e) === 3, 'retry', { details: 'not_persisted' });
    const before = process.env.POSTHOG_CAPTURE_MODE;
    const report = await sendBatch(v1(), events);
    expect(process.env.POSTHOG_CAPTURE_MODE).toBe(before);
    expect(capture.requests.map((r) => [r.path, r.attempt, r.uuids.length])).toEqual([['/i/v1/analytics/events', 1, 5]]);
    const u = events.map((e) => e.uuid);
    expect(report.accepted).toEqual([u[0], u[1], u[4]]);
    expect(report.answered).toEqual([
      { uuid: u[1], verdict: { kind: 'warning', details: 'person_processing_disabled' } },
      { uuid: u[2], verdict: { kind: 'drop', details: 'billing_limit_exceeded' } },
      { uuid: u[3], verdict: { kind: 'retry', details: 'not_persisted', retryAfterMs: 1_000 } },
    ]);
    expect(report.failed).toBeUndefined();
    expect(report.unsent).toEqual([]);
  });

  it('a 503: flush() resolves in V1 mode, yet the report fails every event with the status (no retry inside posthog-node)', async () => {
    capture.failNext(1, 503);
    const events = batch(3);
    const report = await sendBatch(v1(), events);
    expect(capture.requests).toHaveLength(1);
    expect(report).toMatchObject({ accepted: [], failed: { verdict: { kind: 'target', status: 503 }, uuids: events.map((e) => e.uuid) }, unsent: [] });
  });
});
