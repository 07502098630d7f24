/** The worker's pure decisions, as tables: backoff, what a PostHog answer means, re-identification. */
import { describe, expect, it } from 'vitest';
import { parseRetryAfter, retryDelayMs } from '../../worker/backoff.ts';
import { TouchedProfiles } from '../../worker/identify.ts';
import { decide } from '../../worker/outcome.ts';
import type { SendResult } from '../../worker/sender.ts';

describe('retryDelayMs', () => {
  const policy = { baseMs: 1000, maxMs: 60_000 };
  it.each([
    // attempts, random, expected
    [1, 0, 500],
    [1, 1, 1000],
    [2, 0, 1000],
    [2, 1, 2000],
    [3, 0.5, 3000],
    [6, 1, 32_000],
    [7, 1, 60_000], // capped
    [50, 0, 30_000], // capped, half-jitter floor
  ])('attempt %i with random %f waits %i ms', (attempts, random, expected) => {
    expect(retryDelayMs(attempts, policy, 0, () => random)).toBe(expected);
  });

  it('never retries before Retry-After', () => {
    expect(retryDelayMs(1, policy, 7_000, () => 0)).toBe(7_000);
    expect(retryDelayMs(6, policy, 7_000, () => 1)).toBe(32_000);
  });

  it('spreads rows that failed together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => retryDelayMs(4, policy)));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(4000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it.each([
    ['3', 3000],
    ['0', 0],
    ['1.5', 1500],
    ['Thu, 01 Jan 2026 00:00:10 GMT', 10_000],
    ['Wed, 31 Dec 2025 23:59:00 GMT', 0],
    ['soon', undefined],
    ['', undefined],
    [null, undefined],
  ])('%s -> %s', (header, expected) => {
    expect(parseRetryAfter(header, now)).toBe(expected);
  });
});

describe('decide', () => {
  const http = (status: number, retryAfterMs?: number): SendResult => ({
    ok: false,
    kind: 'http',
    status,
    body: 'nope',
    message: `PostHog answered HTTP ${status}: nope`,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
  it.each<[string, SendResult, number, ReturnType<typeof decide>]>([
    ['accepted', { ok: true }, 10, { action: 'delivered' }],
    ['400 on a batch bisects', http(400), 10, { action: 'bisect' }],
    ['400 on one event dead-letters it with the answer', http(400), 1, { action: 'dead', reason: 'PostHog answered HTTP 400: nope' }],
    ['413 on a batch splits', http(413), 2, { action: 'bisect' }],
    ['413 on one event dead-letters it', http(413), 1, { action: 'dead', reason: 'PostHog answered HTTP 413: nope' }],
    ['422 on a batch bisects', http(422), 5, { action: 'bisect' }],
    ['500 retries', http(500), 10, { action: 'retry', error: 'PostHog answered HTTP 500: nope' }],
    ['503 on one event retries (never dead on an outage)', http(503), 1, { action: 'retry', error: 'PostHog answered HTTP 503: nope' }],
    ['429 with Retry-After retries no sooner', http(429, 5000), 10, { action: 'retry', error: 'PostHog answered HTTP 429: nope', retryAfterMs: 5000 }],
    ['429 without Retry-After retries', http(429), 10, { action: 'retry', error: 'PostHog answered HTTP 429: nope' }],
    ['408 retries', http(408), 10, { action: 'retry', error: 'PostHog answered HTTP 408: nope' }],
    ['401 (wrong key) retries, never bisects', http(401), 10, { action: 'retry', error: 'PostHog answered HTTP 401: nope' }],
    ['network error retries', { ok: false, kind: 'network', message: 'network error talking to PostHog: ECONNRESET' }, 10, { action: 'retry', error: 'network error talking to PostHog: ECONNRESET' }],
  ])('%s', (_name, result, size, expected) => {
    expect(decide(result, size)).toEqual(expected);
  });
});

describe('TouchedProfiles', () => {
  const t = (iso: string) => new Date(iso);
  it('identifies each user, persona and organization once, with the newest value of each field', () => {
    const touched = new TouchedProfiles();
    touched.add({ timestamp: t('2026-01-01T00:00:02Z'), user: { id: 'u1', fields: { email: 'new@x.io' } }, organization: { id: 'o1', fields: { name: 'Acme' } } });
    touched.add({ timestamp: t('2026-01-01T00:00:01Z'), user: { id: 'u1', fields: { email: 'old@x.io', name: 'Ann' } }, organization: { id: 'o1', fields: { name: 'Old', slug: 'acme' } } });
    touched.add({
      timestamp: t('2026-01-01T00:00:03Z'),
      user: { id: 'u1', fields: {} },
      automation: { id: 'a1', fields: { name: 'Nightly', is_automation: true, automation_id: 'a1', owner_user_id: 'u1', organization_id: 'o1' } },
      organization: { id: 'o1', fields: {} },
    });
    touched.add({ timestamp: t('2026-01-01T00:00:04Z'), user: { id: 'u2', fields: {} } });
    const events = touched.toEvents(t('2026-01-01T00:01:00Z'));
    expect(events.map((e) => [e.event, e.distinctId, e.properties])).toEqual([
      ['$identify', 'u1', { $set: { email: 'new@x.io', name: 'Ann' } }],
      ['$identify', 'automation_a1', { $set: { name: 'Nightly', is_automation: true, automation_id: 'a1', owner_user_id: 'u1', organization_id: 'o1' } }],
      ['$groupidentify', '$organization_o1', { $group_type: 'organization', $group_key: 'o1', $group_set: { name: 'Acme', slug: 'acme' } }],
    ]);
    // u2 has no known field: nothing to set, no $identify
    expect(events.every((e) => e.profiles && Object.keys(e.profiles).length === 0)).toBe(true);
  });

  it('keeps a group-identify distinct id within PostHog’s 200 characters', () => {
    const touched = new TouchedProfiles();
    touched.add({ timestamp: new Date(), organization: { id: 'o'.repeat(200), fields: { name: 'Long' } } });
    const [event] = touched.toEvents();
    expect(event!.distinctId.length).toBeLessThanOrEqual(200);
    expect(event!.properties.$group_key).toBe('o'.repeat(200));
  });
});
