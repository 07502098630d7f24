import { describe, expect, it } from 'vitest';
import { redactForStorage } from '../src/errors/redact.ts';

describe('redactForStorage (dead-letter reasons, last errors, logs)', () => {
  it.each([
    ['an email', 'invalid event for grace.hopper@navy.example', 'invalid event for [redacted]'],
    ['several emails', 'a@b.co and c.d+e@f-g.example.org', '[redacted] and [redacted]'],
    ['a bearer token', 'Authorization: Bearer abc.def', 'Authorization: Bearer [redacted]'],
    ['a PostHog key', 'api_key phc_0123456789abcdef invalid', 'api_key [redacted] invalid'],
    ['the configured key, whatever its shape', 'key k3y-without-prefix rejected', 'key [redacted] rejected'],
    ['nothing secret', 'PostHog answered HTTP 503: upstream unavailable', 'PostHog answered HTTP 503: upstream unavailable'],
  ])('%s', (_label, text, expected) => {
    expect(redactForStorage(text, ['k3y-without-prefix'])).toBe(expected);
  });

  it('ignores literals too short to be secrets (would shred ordinary text)', () => {
    expect(redactForStorage('a b c', ['a', ''])).toBe('a b c');
  });
});
