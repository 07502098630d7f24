/**
 * OutboxError is structured: `code`, `field`, `detail`, and a `message` formatted once from them. Whoever
 * shows it in other terms (the CLI) reads the parts, never cuts the message apart.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSetting } from '../cli/settings.ts';
import { checkDatabaseUrl, refuseUrlCredentials } from '../src/connection/config.ts';
import { OutboxError } from '../src/errors/errors.ts';
import { checkEvent } from '../src/record/validate.ts';
import { quoteSchema } from '../src/outbox/columns.ts';
import { checkPostHogHost, resolveSettings } from '../worker/settings/settings.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

function thrown(run: () => unknown): OutboxError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(OutboxError);
    return error as OutboxError;
  }
  throw new Error('did not throw');
}

describe('OutboxError', () => {
  it('carries code, field and detail; the message is `field: detail`', () => {
    const error = new OutboxError('invalid', 'batchSize', 'must be a whole number from 1 to 10000, got 0');
    expect(error).toMatchObject({ name: 'OutboxError', code: 'invalid', field: 'batchSize', detail: 'must be a whole number from 1 to 10000, got 0' });
    expect(error.message).toBe('batchSize: must be a whole number from 1 to 10000, got 0');
  });

  it('about(field): the same fault about another field, caused by the first', () => {
    const first = new OutboxError('transaction_pooler', 'databaseUrl', 'leads to a transaction-mode connection pooler');
    const second = first.about('directUrl');
    expect(second).toMatchObject({ code: 'transaction_pooler', field: 'directUrl', detail: first.detail, cause: first });
    expect(second.message).toBe('directUrl: leads to a transaction-mode connection pooler');
  });

  it.each<[string, () => unknown, OutboxError['code'], string, RegExp]>([
    ['an event without a name', () => checkEvent({ event: '' }, 'event'), 'required', 'event.event', /./],
    ['a schema name', () => quoteSchema('Bad-Name'), 'invalid', 'schema', /^must match/],
    ['a missing connection URL', () => checkDatabaseUrl(undefined), 'required', 'databaseUrl', /^is not set/],
    [
      'a connection URL of another database',
      () => checkDatabaseUrl('mysql://u:pw@h/db', 'directUrl'),
      'invalid',
      'directUrl',
      /^must start with postgres:\/\//,
    ],
    [
      'credentials in a URL',
      () => refuseUrlCredentials('https://u:pw@h', 'posthog.host'),
      'invalid',
      'posthog.host',
      /^must not contain a user name or password/,
    ],
    ['a PostHog host that is no URL', () => checkPostHogHost('nope'), 'invalid', 'posthog.host', /^is not a URL/],
    [
      'a setting out of range',
      () => resolveSettings({ posthog: { apiKey: 'k' }, concurrency: 0 }),
      'invalid',
      'concurrency',
      /^must be a whole number from 1 to 64, got 0$/,
    ],
    [
      'a rule between settings',
      () => resolveSettings({ posthog: { apiKey: 'k', requestTimeoutMs: 30_000 }, leaseMs: 20_000 }),
      'invalid',
      'leaseMs',
      /^must be longer than the request timeout \(30s\), got 20s$/,
    ],
    ['a duration without a unit (the CLI)', () => parseSetting('maxAgeMs', '7'), 'invalid', 'maxAgeMs', /with a unit .* got "7"$/],
  ])('%s: structured, the detail without the field', (_name, run, code, field, detail) => {
    const error = thrown(run);
    expect(error).toMatchObject({ code, field });
    expect(error.detail).toMatch(detail);
    expect(error.detail.startsWith(field)).toBe(false);
    expect(error.message).toBe(`${field}: ${error.detail}`);
  });

  it('no module cuts or rewrites an error message: they read field and detail', () => {
    const sources = ['src', 'worker', 'cli', 'dev'].flatMap((dir) =>
      (readdirSync(path.join(ROOT, dir), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f)),
    );
    const surgery = /field\.length|\.message\.slice\(|\.message\.replace|\.message\.endsWith|message\.replaceAll/;
    expect(sources.filter((file) => surgery.test(readFileSync(path.join(ROOT, file), 'utf8')))).toEqual([]);
  });

  it('no library module names a CLI flag in a message', () => {
    const library = ['src', 'worker'].flatMap((dir) =>
      (readdirSync(path.join(ROOT, dir), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f)),
    );
    // A flag inside a string literal or template (comments may mention the CLI).
    const flagInString = /(['`])[^'`\n]*[\s(]--[a-z][a-z-]+[^'`\n]*\1/;
    const code = (file: string) =>
      readFileSync(path.join(ROOT, file), 'utf8')
        .split('\n')
        .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line))
        .join('\n');
    expect(library.filter((file) => flagInString.test(code(file)))).toEqual([]);
  });
});
