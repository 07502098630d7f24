/**
 * Capture V1 (`POST /i/v1/analytics/events`) on the loopback capture server, driven by real posthog-node
 * clients built with POSTHOG_CAPTURE_MODE=v1, and by plain fetch for what posthog-node never sends.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { type CaptureV1Error, client, KEY, postJson, uuid, v1Event, v1Headers } from './clients.ts';

let server: CaptureServer;
const V1 = '/i/v1/analytics/events';

beforeAll(async () => {
  server = await startCaptureServer({ apiKey: KEY });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const post = (body: unknown, headers = v1Headers()) => postJson(`${server.url}${V1}`, body, headers);
const batch = (...events: unknown[]) => ({ created_at: new Date().toISOString(), batch: events });

describe('what posthog-node sends in capture mode v1', () => {
  it('arrives on /i/v1/analytics/events, gzipped, Bearer-authenticated, with options and session_id lifted out of properties', async () => {
    const { ph, errors } = client(server.url, 'v1');
    ph.capture({
      distinctId: 'user_1',
      event: 'tool_called',
      uuid: uuid(1),
      timestamp: new Date('2026-05-01T12:00:00.000Z'),
      properties: { tool: 'grep', $session_id: 'session_1', $process_person_profile: false },
      groups: { organization: 'org_1' },
    });
    ph.identify({ distinctId: 'user_1', properties: { email: 'a@b.c' } });
    await ph.flush();

    expect(errors).toEqual([]);
    expect(server.events.map((e) => [e.event, e.endpoint, e.verdict])).toEqual([
      ['tool_called', 'v1', 'ok'],
      ['$identify', 'v1', 'ok'],
    ]);
    expect(server.events[0]).toEqual({
      event: 'tool_called',
      uuid: uuid(1),
      distinct_id: 'user_1',
      timestamp: '2026-05-01T12:00:00.000Z',
      session_id: 'session_1',
      options: { process_person_profile: false },
      // No $lib / $lib_version: on v1 the PostHog-Sdk-Info header says who sent it.
      properties: { tool: 'grep', $groups: { organization: 'org_1' }, $is_server: true, $geoip_disable: true },
    });
    const [request] = server.requests;
    expect(request).toMatchObject({
      method: 'POST',
      path: V1,
      endpoint: 'v1',
      status: 200,
      outcome: 'accepted',
      gzip: true,
      attempt: 1,
      events: 2,
      historicalMigration: false,
      envelopeKeys: ['created_at', 'batch'],
    });
    expect(request!.postHogRequestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(Date.parse(request!.createdAt!)).not.toBeNaN();
    expect(request!.verdicts).toEqual({ [uuid(1)]: { result: 'ok' }, [server.events[1]!.uuid!]: { result: 'ok' } });
  });

  it('answers each verdict: ok and warning are recorded, drop and retry are not and come back as a CaptureV1Error', async () => {
    server.verdictWhere((e) => e.uuid === uuid(2), 'warning', { details: 'person_processing_disabled' });
    server.verdictWhere((e) => e.uuid === uuid(3), 'drop', { details: 'billing_limit_exceeded' });
    server.verdictWhere((e) => e.uuid === uuid(4), 'retry', { details: 'not_persisted' });
    const { ph, errors } = client(server.url, 'v1');
    for (let i = 1; i <= 4; i++) ph.capture({ distinctId: `user_${i}`, event: 'e', uuid: uuid(i) });
    await ph.flush(); // resolves: posthog-node reports V1 failures on 'error' only

    expect(server.events.map((e) => [e.uuid, e.verdict, e.details])).toEqual([
      [uuid(1), 'ok', undefined],
      [uuid(2), 'warning', 'person_processing_disabled'],
    ]);
    expect(server.requests[0]).toMatchObject({ status: 200, fault: 'verdict', outcome: 'accepted' });
    expect(server.requests[0]!.verdicts).toEqual({
      [uuid(1)]: { result: 'ok' },
      [uuid(2)]: { result: 'warning', details: 'person_processing_disabled' },
      [uuid(3)]: { result: 'drop', details: 'billing_limit_exceeded' },
      [uuid(4)]: { result: 'retry', details: 'not_persisted' },
    });
    const [error] = errors as CaptureV1Error[];
    expect(errors).toHaveLength(1);
    expect(error!.name).toBe('CaptureV1Error');
    expect(error!.drops).toEqual([{ uuid: uuid(3), details: 'billing_limit_exceeded' }]);
    expect(error!.retryExhausted).toEqual([uuid(4)]); // fetchRetryCount 0: one attempt only
    expect(error!.requestId).toBe(server.requests[0]!.postHogRequestId);
  });

  it('retry: posthog-node resends only the retried events, after Retry-After, with the same request id and the next attempt', async () => {
    server.verdictWhere((e) => e.uuid === uuid(2), 'retry', { times: 1 });
    const { ph, errors } = client(server.url, 'v1', { fetchRetryCount: 1, fetchRetryDelay: 10 });
    for (let i = 1; i <= 3; i++) ph.capture({ distinctId: `user_${i}`, event: 'e', uuid: uuid(i) });
    await ph.flush();

    expect(errors).toEqual([]);
    const [first, second] = server.requests;
    expect([first!.attempt, second!.attempt]).toEqual([1, 2]);
    expect(second!.postHogRequestId).toBe(first!.postHogRequestId);
    expect(second!.uuids).toEqual([uuid(2)]);
    // The 200 with a retry carried Retry-After: 1, and posthog-node's V1 sender honours it (v0's retries do not).
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(900);
    expect(server.countsByUuid()).toEqual(new Map([uuid(1), uuid(3), uuid(2)].map((u) => [u, 1])));
  });

  it('judges events as PostHog does: an invalid one is dropped alone, a known-bad distinct_id is a warning', async () => {
    const { ph, errors } = client(server.url, 'v1');
    ph.capture({ distinctId: 'user_1', event: 'fine', uuid: uuid(1) });
    ph.capture({ distinctId: 'x'.repeat(201), event: 'too_long_id', uuid: uuid(2) });
    ph.capture({ distinctId: 'null', event: 'bad_id', uuid: uuid(3) });
    await ph.flush();
    expect(server.events.map((e) => [e.uuid, e.verdict, e.details])).toEqual([
      [uuid(1), 'ok', undefined],
      [uuid(3), 'warning', 'person_processing_disabled'],
    ]);
    expect((errors[0] as CaptureV1Error).drops).toEqual([{ uuid: uuid(2), details: 'distinct_id_too_large' }]);
  });
});

describe('V1 per-event verdicts (plain fetch)', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['an empty event name', { event: '' }, 'missing_event_name'],
    ['an event name over 200 bytes', { event: 'é'.repeat(101) }, 'event_name_too_long'],
    ['a blank distinct_id', { distinct_id: '  ' }, 'missing_distinct_id'],
    ['a timestamp that is not RFC 3339', { timestamp: '2026-05-01' }, 'invalid_event_timestamp'],
    ['properties that are an array', { properties: [] }, 'malformed_event_properties'],
    ['options that do not coerce', { options: { process_person_profile: 'maybe' } }, 'invalid_options'],
  ];
  it.each(cases)('drop for %s, the rest of the batch accepted', async (_, fields, details) => {
    const res = await post(batch(v1Event(1), v1Event(2, fields)));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ results: { [uuid(1)]: { result: 'ok' }, [uuid(2)]: { result: 'drop', details } } });
    expect(res.headers.get('retry-after')).toBeNull();
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(1)]);
  });

  it('drop for an event over maxEventBytes; Retry-After: 1 on a 200 that holds a retry', async () => {
    const small = await startCaptureServer({ apiKey: KEY, maxEventBytes: 1_000 });
    try {
      const big = await postJson(`${small.url}${V1}`, batch(v1Event(1, { properties: { blob: 'x'.repeat(2_000) } })), v1Headers());
      expect(big.body).toEqual({ results: { [uuid(1)]: { result: 'drop', details: 'event_too_big' } } });
    } finally {
      await small.close();
    }
    server.verdictWhere(() => true, 'retry', { times: 1 });
    const retried = await post(batch(v1Event(1), v1Event(2)));
    expect(retried.body).toEqual({ results: { [uuid(1)]: { result: 'retry' }, [uuid(2)]: { result: 'ok' } } });
    expect(retried.headers.get('retry-after')).toBe('1');
  });
});

describe('V1 request errors (the whole request, nothing recorded, PostHog’s error body)', () => {
  const cases: [string, unknown, Record<string, string | undefined>, number, string][] = [
    ['no Authorization header', batch(v1Event(1)), { Authorization: undefined }, 401, 'missing_authorization'],
    ['a key that is not the project’s', batch(v1Event(1)), { Authorization: 'Bearer phc_other' }, 401, 'invalid_api_token'],
    ['a personal API key', batch(v1Event(1)), { Authorization: 'Bearer phx_personal' }, 401, 'invalid_api_token'],
    ['Basic auth', batch(v1Event(1)), { Authorization: 'Basic abc' }, 400, 'invalid_header_value'],
    ['no PostHog-Request-Id', batch(v1Event(1)), { 'PostHog-Request-Id': undefined }, 400, 'missing_required_headers'],
    ['a PostHog-Attempt of 0', batch(v1Event(1)), { 'PostHog-Attempt': '0' }, 400, 'invalid_header_value'],
    ['a text/plain body', batch(v1Event(1)), { 'Content-Type': 'text/plain' }, 415, 'unsupported_content_type'],
    ['an lz4 body', batch(v1Event(1)), { 'Content-Encoding': 'lz4' }, 415, 'unsupported_encoding'],
    ['an empty body', '', {}, 400, 'empty_body'],
    ['a body that is not JSON', '{"batch": [', {}, 400, 'request_parsing_error'],
    ['an event without a uuid field', batch(v1Event(1, { uuid: undefined })), {}, 400, 'request_parsing_error'],
    ['an empty batch', batch(), {}, 400, 'empty_batch'],
    ['a created_at that is not RFC 3339', { created_at: 'yesterday', batch: [v1Event(1)] }, {}, 400, 'invalid_batch'],
    ['an empty uuid', batch(v1Event(1, { uuid: ' ' })), {}, 400, 'missing_event_uuid'],
    ['a uuid that is not a UUID', batch(v1Event(1, { uuid: 'not-a-uuid' })), {}, 400, 'invalid_event_uuid'],
    ['the same uuid twice', batch(v1Event(1), v1Event(1)), {}, 400, 'duplicate_event_uuid'],
  ];
  it.each(cases)('%s', async (_, body, headers, status, error) => {
    const res = await post(body, v1Headers(headers));
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error, error_description: expect.any(String), error_uri: 'https://posthog.com/docs/api' });
    expect(server.events).toEqual([]);
    expect(server.requests[0]).toMatchObject({ endpoint: 'v1', status, outcome: 'rejected', error: res.body.error_description });
  });

  it('posthog-node with a wrong key gets a CaptureV1Error naming the 401', async () => {
    const other = await startCaptureServer({ apiKey: 'phc_other' });
    try {
      const { ph, errors } = client(other.url, 'v1');
      ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
      await ph.flush();
      expect((errors[0] as CaptureV1Error).retryExhausted).toEqual([uuid(1)]);
      expect(String((errors[0] as CaptureV1Error).cause)).toMatch(/HTTP 401.*invalid_api_token/);
    } finally {
      await other.close();
    }
  });
});
