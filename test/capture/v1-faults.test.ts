/**
 * The capture server's request-level faults on Capture V1, as a real posthog-node client in capture mode v1
 * meets them. Unlike v0, posthog-node's V1 sender never rejects flush(): every failure is a CaptureV1Error
 * on 'error', and the batch leaves the client's queue whatever happened to it.
 */
import { describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { type CaptureV1Error, client, postJson, uuid, v1Event, v1Headers, captureServerHooks } from './clients.ts';

let server: CaptureServer;
captureServerHooks((started) => (server = started));

const v1Error = (errors: Error[]) => {
  expect(errors).toHaveLength(1);
  expect(errors[0]!.name).toBe('CaptureV1Error');
  return errors[0] as CaptureV1Error;
};

describe('request-level faults on V1', () => {
  it('failNext 503: flush() resolves, a CaptureV1Error carries the status, the batch is gone from the client', async () => {
    server.failNext(1, 503);
    const { ph, errors } = client(server.url, 'v1');
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await ph.flush();
    const error = v1Error(errors);
    expect(error.retryExhausted).toEqual([uuid(1)]);
    expect(String(error.cause)).toMatch(/Capture V1 request failed with HTTP 503: .*injected_fault/);
    expect(server.requests[0]).toMatchObject({ endpoint: 'v1', status: 503, fault: 'fail', uuids: [uuid(1)] });
    await ph.flush(); // nothing left to send
    expect(server.requests).toHaveLength(1);
    expect(server.events).toEqual([]);
  });

  it('posthog-node retries 5xx on V1 (fetchRetryCount > 0) with the same request id, and the retry delivers once', async () => {
    server.failNext(2, 500);
    const { ph, errors } = client(server.url, 'v1', { fetchRetryCount: 2, fetchRetryDelay: 10 });
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await ph.flush();
    expect(errors).toEqual([]);
    expect(server.requests.map((r) => [r.status, r.attempt])).toEqual([
      [500, 1],
      [500, 2],
      [200, 3],
    ]);
    expect(new Set(server.requests.map((r) => r.postHogRequestId)).size).toBe(1);
    expect(server.countsByUuid().get(uuid(1))).toBe(1);
  });

  it('429 with Retry-After: the V1 sender waits it out before its retry (the v0 sender does not)', async () => {
    server.failNext(1, 429, { retryAfter: 1 });
    const { ph, errors } = client(server.url, 'v1', { fetchRetryCount: 1, fetchRetryDelay: 10 });
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await ph.flush();
    expect(errors).toEqual([]);
    const [limited, accepted] = server.requests;
    expect([limited!.status, accepted!.status]).toEqual([429, 200]);
    expect(accepted!.at - limited!.at).toBeGreaterThanOrEqual(900);
  });

  it('400 is not retried on V1', async () => {
    server.failNext(1, 400);
    const { ph, errors } = client(server.url, 'v1', { fetchRetryCount: 2, fetchRetryDelay: 10 });
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await ph.flush();
    expect(v1Error(errors).retryExhausted).toEqual([uuid(1)]);
    expect(server.requests.map((r) => r.status)).toEqual([400]);
  });

  it('delayNext past the client timeout: the events are recorded late, the client reports a timeout and keeps nothing', async () => {
    server.delayNext(1, 1_000);
    const { ph, errors } = client(server.url, 'v1', { requestTimeout: 200 });
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await ph.flush();
    const error = v1Error(errors);
    expect(error.retryExhausted).toEqual([uuid(1)]);
    expect(error.cause).toMatchObject({ name: 'AbortError', message: 'Capture V1 request timed out waiting for response headers after 200ms' });
    await server.waitFor(1, { timeoutMs: 2_000 });
    expect(server.events[0]).toMatchObject({ uuid: uuid(1) });
    expect([server.events[0]!.late, server.events[0]!.endpoint]).toEqual([true, 'v1']);
    expect(server.requests[0]).toMatchObject({ status: 200, fault: 'delay', clientGone: true, late: true });
    await ph.flush(); // v0 would resend the batch here; v1 has let it go
    expect(server.requests).toHaveLength(1);
  });

  it('dropNext with ingested, then posthog-node’s retry: the uuid arrives twice, once late', async () => {
    server.dropNext(1, { ingested: true });
    const { ph, errors } = client(server.url, 'v1', { fetchRetryCount: 1, fetchRetryDelay: 10 });
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await ph.flush();
    expect(errors).toEqual([]);
    expect(server.requests.map((r) => [r.status, r.fault ?? null, r.attempt])).toEqual([
      [0, 'drop', 1],
      [200, null, 2],
    ]);
    expect(server.duplicates()).toEqual([{ uuid: uuid(1), count: 2, late: 1 }]);
    expect(server.duplicates({ ignoreLate: true })).toEqual([]);
  });

  it('overQuota on V1: 429 billing_limit_exceeded with Retry-After: 1, nothing recorded', async () => {
    server.overQuota();
    const { ph, errors } = client(server.url, 'v1');
    ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await ph.flush();
    expect(String(v1Error(errors).cause)).toMatch(/HTTP 429.*billing_limit_exceeded/);
    expect(server.requests[0]).toMatchObject({ status: 429, fault: 'overQuota', outcome: 'over-quota' });
    const res = await postJson(`${server.url}/i/v1/analytics/events`, { created_at: new Date().toISOString(), batch: [v1Event(2)] }, v1Headers());
    expect(res.headers.get('retry-after')).toBe('1');
    expect(server.events).toEqual([]);
  });

  it('rejectEventsWhere on V1: the whole request is refused in V1’s error shape', async () => {
    server.rejectEventsWhere((e) => e.event === 'poison');
    const res = await postJson(
      `${server.url}/i/v1/analytics/events`,
      { created_at: new Date().toISOString(), batch: [v1Event(1), v1Event(2, { event: 'poison' })] },
      v1Headers(),
    );
    expect(res).toMatchObject({ status: 400, body: { error: 'rejected_event', error_description: expect.stringContaining(uuid(2)) } });
    expect(server.requests[0]).toMatchObject({ fault: 'reject', outcome: 'rejected' });
    expect(server.events).toEqual([]);
  });

  it('verdictWhere lapses after times, and clearFaults ends it', async () => {
    server.verdictWhere(() => true, 'drop', { details: 'rejected', times: 1 });
    server.verdictWhere((e) => e.uuid === uuid(3), 'drop');
    const { ph, errors } = client(server.url, 'v1');
    for (let i = 1; i <= 3; i++) ph.capture({ distinctId: `user_${i}`, event: 'e', uuid: uuid(i) });
    await ph.flush();
    expect(v1Error(errors).drops).toEqual([{ uuid: uuid(1), details: 'rejected' }, { uuid: uuid(3) }]);
    server.clearFaults();
    ph.capture({ distinctId: 'user_3', event: 'e', uuid: uuid(3) });
    await ph.flush();
    expect(server.events.map((e) => e.uuid)).toEqual([uuid(2), uuid(3)]);
    expect(() => server.verdictWhere(() => true, 'maybe' as 'ok')).toThrow(RangeError);
  });
});

describe('one log across endpoints', () => {
  it('counts a uuid delivered through v0 and then v1 twice, and says which endpoint each copy came through', async () => {
    const v0 = client(server.url, 'v0');
    const v1 = client(server.url, 'v1');
    v0.ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await v0.ph.flush();
    v1.ph.capture({ distinctId: 'user_1', event: 'e', uuid: uuid(1) });
    await v1.ph.flush();
    expect(server.countsByUuid().get(uuid(1))).toBe(2);
    expect(
      server
        .byUuid()
        .get(uuid(1))!
        .map((e) => e.endpoint),
    ).toEqual(['v0', 'v1']);
    expect(server.requests.map((r) => [r.path, r.endpoint])).toEqual([
      ['/batch/', 'v0'],
      ['/i/v1/analytics/events', 'v1'],
    ]);
  });
});
