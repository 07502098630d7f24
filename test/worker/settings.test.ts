/** The worker's settings: their one declaration (worker/settings/schema.ts) and its resolver, as tables of cases. */
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../worker/settings/duration.ts';
import { OutboxError } from '../../src/errors/errors.ts';
import { SETTINGS, type SettingName, type SettingSpec } from '../../worker/settings/schema.ts';
import { resolveSettings, type SettingsInput } from '../../worker/settings/settings.ts';

const posthog = { apiKey: 'phc_x', host: 'http://127.0.0.1:1' };

/** What resolving `input` threw (an OutboxError expected). */
function refusal(input: Partial<SettingsInput>): OutboxError {
  try {
    resolveSettings({ posthog, ...input } as SettingsInput);
  } catch (error) {
    expect(error).toBeInstanceOf(OutboxError);
    return error as OutboxError;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

/** `{ posthog: { requestTimeoutMs: 5 } }` for `posthog.requestTimeoutMs`. */
function inputOf(name: SettingName, value: number): Partial<SettingsInput> {
  const [head, key] = name.split('.') as [string, string | undefined];
  if (key === undefined) return { [head]: value };
  if (head === 'posthog') return { posthog: { ...posthog, [key]: value } };
  return { [head]: { [key]: value } };
}

describe('resolveSettings: defaults', () => {
  it('fills every default, frozen', () => {
    const s = resolveSettings({ posthog: { apiKey: 'phc_x' } });
    expect(s).toEqual({
      schema: 'posthog_outbox',
      target: { apiKey: 'phc_x', host: 'https://us.i.posthog.com', requestTimeoutMs: 10_000, captureMode: 'v0' },
      batchSize: 1000,
      concurrency: 2,
      maxAgeMs: 7 * 86_400_000,
      historicalAfterMs: 3_600_000,
      leaseMs: 60_000,
      maxPassMs: 10_000,
      identifyRefreshMs: 86_400_000,
      deadLetterRetentionMs: 30 * 86_400_000,
      backoff: { baseMs: 1_000, maxMs: 60_000 },
      safetyNetCron: '* * * * *',
      unhealthyAfterMs: 300_000,
      shutdownTimeoutMs: 20_000,
      metrics: undefined,
    });
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.target)).toBe(true);
  });

  it.each<[string, Partial<SettingsInput>, Partial<ReturnType<typeof resolveSettings>>]>([
    ['a 30 s request timeout: the default lease is three of them', { posthog: { ...posthog, requestTimeoutMs: 30_000 } }, { leaseMs: 90_000 }],
    ['a 1 s request timeout: the lease stays at its minimum', { posthog: { ...posthog, requestTimeoutMs: 1_000 } }, { leaseMs: 60_000 }],
    ['an explicit lease longer than the request', { posthog: { ...posthog, requestTimeoutMs: 1_000 }, leaseMs: 2_000 }, { leaseMs: 2_000 }],
    ['a longest retry delay under 1 s: it is also the first', { backoff: { maxMs: 300 } }, { backoff: { baseMs: 300, maxMs: 300 } }],
    ['a longest retry delay over 1 s: the first stays 1 s', { backoff: { maxMs: 5_000 } }, { backoff: { baseMs: 1_000, maxMs: 5_000 } }],
    ['metrics without a host: every interface', { metrics: { port: 9464 } }, { metrics: { port: 9464, host: '0.0.0.0' } }],
    [
      'a host with trailing slashes: without them',
      { posthog: { ...posthog, host: 'https://eu.i.posthog.com//' } },
      { target: { ...posthog, host: 'https://eu.i.posthog.com', requestTimeoutMs: 10_000, captureMode: 'v0' } },
    ],
    ['identify refresh 0: once per run', { identifyRefreshMs: 0 }, { identifyRefreshMs: 0 }],
    ['retention 0: kept forever', { deadLetterRetentionMs: 0 }, { deadLetterRetentionMs: 0 }],
    ['capture mode v1', { posthog: { ...posthog, captureMode: 'v1' } }, { target: { ...posthog, requestTimeoutMs: 10_000, captureMode: 'v1' } }],
  ])('%s', (_name, input, resolved) => {
    expect(resolveSettings({ posthog, ...input } as SettingsInput)).toMatchObject(resolved);
  });
});

/** Every numeric setting's bounds, from its declaration: the bounds are accepted, one past them refused. */
const NUMERIC = (Object.entries(SETTINGS) as [SettingName, SettingSpec][]).filter(([, spec]) => spec.min !== undefined && spec.max !== undefined);

describe('resolveSettings: each setting within its range', () => {
  it('covers every numeric setting', () => {
    expect(NUMERIC.map(([name]) => name).sort()).toEqual(
      [
        'backoff.baseMs',
        'backoff.maxMs',
        'batchSize',
        'concurrency',
        'deadLetterRetentionMs',
        'historicalAfterMs',
        'identifyRefreshMs',
        'leaseMs',
        'maxAgeMs',
        'maxPassMs',
        'metrics.port',
        'posthog.requestTimeoutMs',
        'shutdownTimeoutMs',
        'unhealthyAfterMs',
      ].sort(),
    );
  });

  // Settings another setting must stay consistent with, at the bounds tried here.
  const around = (name: SettingName): Partial<SettingsInput> =>
    name === 'leaseMs' ? { posthog: { ...posthog, requestTimeoutMs: 100 } } : name.startsWith('backoff.') ? { backoff: { baseMs: 1, maxMs: 3_600_000 } } : {};
  const merge = (name: SettingName, value: number): Partial<SettingsInput> => {
    const base = around(name);
    const own = inputOf(name, value);
    return { ...base, ...own, ...(name.startsWith('backoff.') ? { backoff: { ...base.backoff, ...own.backoff } } : {}) };
  };

  it.each(NUMERIC)('%s: its bounds are accepted', (name, spec) => {
    for (const value of [spec.min!, spec.max!]) expect(() => resolveSettings({ posthog, ...merge(name, value) } as SettingsInput)).not.toThrow();
  });

  it.each(NUMERIC)('%s: one past either bound, a fraction and NaN are refused, naming the setting and its range', (name, spec) => {
    const tooSmall = spec.min! - 1;
    const refused = [spec.max! + 1, spec.min! + 0.5, Number.NaN, ...(tooSmall === 0 && spec.zero ? [] : [tooSmall])];
    for (const value of refused) {
      const error = refusal(merge(name, value));
      expect(error).toMatchObject({ code: 'invalid', field: name });
      const range = spec.kind === 'duration' ? `from ${formatDuration(spec.min!)} to ${formatDuration(spec.max!)}` : `from ${spec.min} to ${spec.max}`;
      expect(error.detail).toContain(range);
      expect(error.detail).toContain(`got ${spec.kind === 'duration' ? formatDuration(value) : value}`);
      expect(error.message).toBe(`${name}: ${error.detail}`);
    }
  });

  it.each([
    ['identifyRefreshMs', 'identify every entity once per drain pass'],
    ['deadLetterRetentionMs', 'keep them forever'],
  ] as const)('%s: 0 is accepted and the error says what it means', (name, meaning) => {
    expect(() => resolveSettings({ posthog, [name]: 0 })).not.toThrow();
    expect(refusal({ [name]: -1 }).detail).toBe(
      `must be 0 (${meaning}) or ${name === 'identifyRefreshMs' ? 'a duration from 1s to 365d' : 'a duration from 1m to 3650d'}, got -1ms`,
    );
  });
});

describe('resolveSettings: rules between settings and of text settings', () => {
  it.each<[string, Partial<SettingsInput>, OutboxError['code'], string, RegExp]>([
    ['a lease no longer than a request', { leaseMs: 10_000 }, 'invalid', 'leaseMs', /^must be longer than the request timeout \(10s\), got 10s$/],
    [
      'a backoff ceiling under its base',
      { backoff: { baseMs: 1_000, maxMs: 500 } },
      'invalid',
      'backoff.maxMs',
      /^must be at least the first retry delay \(1s\), got 500ms$/,
    ],
    ['a bad schema name', { schema: 'Bad-Name' }, 'invalid', 'schema', /^must match/],
    ['no API key', { posthog: { apiKey: '' } }, 'required', 'posthog.apiKey', /^is not set/],
    ['a blank API key', { posthog: { apiKey: '  ' } }, 'required', 'posthog.apiKey', /^is not set/],
    ['a host that is not a URL', { posthog: { ...posthog, host: 'eu.i.posthog.com' } }, 'invalid', 'posthog.host', /^is not a URL/],
    ['an unknown capture mode', { posthog: { ...posthog, captureMode: 'v2' as never } }, 'invalid', 'posthog.captureMode', /^must be one of v0, v1, got "v2"$/],
    ['a host that is not http(s)', { posthog: { ...posthog, host: 'ftp://posthog.example' } }, 'invalid', 'posthog.host', /^must be an http\(s\) URL/],
    [
      'a host with a password',
      { posthog: { ...posthog, host: 'https://u:pw-secret@posthog.example' } },
      'invalid',
      'posthog.host',
      /^must not contain a user name or password/,
    ],
  ])('refuses %s: an OutboxError naming the setting, never a flag', (_name, input, code, field, detail) => {
    const error = refusal(input);
    expect(error).toMatchObject({ code, field });
    expect(error.detail).toMatch(detail);
    expect(error.message).toBe(`${field}: ${error.detail}`);
    expect(error.message).not.toMatch(/--[a-z]|POSTHOG_/);
    expect(error.message).not.toContain('pw-secret');
  });
});

describe('durations (worker/settings/duration.ts)', () => {
  it.each<[string, number | undefined]>([
    ['0', 0],
    ['500ms', 500],
    ['30s', 30_000],
    [' 10m ', 600_000],
    ['36h', 129_600_000],
    ['7d', 604_800_000],
    ['10 s', 10_000],
    ['10000', undefined],
    ['7', undefined],
    ['1.5s', undefined],
    ['-1s', undefined],
    ['1w', undefined],
    ['1h30m', undefined],
    ['', undefined],
    ['99999999999999999d', undefined],
  ])('parseDuration(%j) = %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each<[number, string]>([
    [0, '0'],
    [1_500, '1500ms'],
    [90_000, '90s'],
    [3_600_000, '1h'],
    [604_800_000, '7d'],
    [-1, '-1ms'],
    [Number.NaN, 'NaN'],
  ])('formatDuration(%s) = %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('every duration default reads back as itself', () => {
    for (const spec of Object.values(SETTINGS) as SettingSpec[])
      if (spec.kind === 'duration' && typeof spec.default === 'number') expect(parseDuration(formatDuration(spec.default))).toBe(spec.default);
  });
});
