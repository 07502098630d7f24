/** The worker's one settings resolver (worker/settings.ts): defaults and rules, as a table of cases. */
import { describe, expect, it } from 'vitest';
import { OutboxError } from '../../src/errors.ts';
import { resolveSettings, WORKER_DEFAULTS, type SettingsInput } from '../../worker/settings.ts';

const posthog = { apiKey: 'phc_x', host: 'http://127.0.0.1:1' };

describe('resolveSettings', () => {
  it('fills every default, frozen', () => {
    const s = resolveSettings({ posthog });
    expect(s).toMatchObject({
      schema: 'posthog_outbox',
      batchSize: WORKER_DEFAULTS.batchSize,
      concurrency: WORKER_DEFAULTS.concurrency,
      maxAgeMs: WORKER_DEFAULTS.maxAgeMs,
      leaseSeconds: 60,
      identifyRefreshMs: WORKER_DEFAULTS.identifyRefreshMs,
      deadLetterRetentionMs: WORKER_DEFAULTS.deadLetterRetentionMs,
      target: { ...posthog, requestTimeoutMs: 10_000 },
      safetyNetCron: '* * * * *',
    });
    expect(Object.isFrozen(s)).toBe(true);
  });

  it.each([
    ['a 30 s request timeout: the default lease is three of them', { posthog: { ...posthog, requestTimeoutMs: 30_000 } }, 90],
    ['a 1 s request timeout: the lease stays at its minimum', { posthog: { ...posthog, requestTimeoutMs: 1_000 } }, 60],
    ['an explicit lease longer than the request', { posthog: { ...posthog, requestTimeoutMs: 1_000 }, leaseSeconds: 2 }, 2],
  ])('%s', (_name, input, lease) => {
    expect(resolveSettings(input as SettingsInput).leaseSeconds).toBe(lease);
  });

  it.each([
    ['a lease no longer than a request', { leaseSeconds: 10 }, 'leaseSeconds', /\(10 s\) must be longer than posthog.requestTimeoutMs \(10000 ms\)/],
    ['a fractional lease', { leaseSeconds: 1.5 }, 'leaseSeconds', /positive whole number/],
    ['batch size 0', { batchSize: 0 }, 'batchSize', /from 1 to 10000/],
    ['concurrency 65', { concurrency: 65 }, 'concurrency', /from 1 to 64/],
    ['a negative max age', { maxAgeMs: -1 }, 'maxAgeMs', /positive number of milliseconds/],
    ['max age 0', { maxAgeMs: 0 }, 'maxAgeMs', /positive number of milliseconds/],
    ['identify refresh NaN', { identifyRefreshMs: Number.NaN }, 'identifyRefreshMs', /zero or a positive number.*once per drain run/],
    ['negative retention', { deadLetterRetentionMs: -5 }, 'deadLetterRetentionMs', /keep forever/],
    ['a backoff ceiling under its base', { backoff: { baseMs: 1_000, maxMs: 500 } }, 'backoff.maxMs', /must be at least backoff.baseMs/],
    ['a bad schema name', { schema: 'Bad-Name' }, 'schema', /must match/],
  ])('refuses %s with an OutboxError naming the setting', (_name, input, field, message) => {
    const error = (() => {
      try {
        resolveSettings({ posthog, ...input } as SettingsInput);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(OutboxError);
    expect((error as OutboxError).field).toBe(field);
    expect((error as OutboxError).message).toMatch(message);
  });
});
