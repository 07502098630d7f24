/** `posthog-outbox worker` refuses bad configuration with exit 2 and a one-line message naming the setting. */
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

const DB = 'postgres://ops:s3cret-pw@127.0.0.1:1/app';
const KEY = 'phc_configtestkey123';

describe('posthog-outbox worker configuration', () => {
  it.each([
    ['no POSTHOG_API_KEY', [], { DATABASE_URL: DB }, /POSTHOG_API_KEY: is not set/],
    ['an empty POSTHOG_API_KEY', [], { DATABASE_URL: DB, POSTHOG_API_KEY: '  ' }, /POSTHOG_API_KEY: is not set/],
    ['no DATABASE_URL', [], { POSTHOG_API_KEY: KEY }, /DATABASE_URL: is not set/],
    ['a malformed DATABASE_URL', [], { DATABASE_URL: 'postgres//nope', POSTHOG_API_KEY: KEY }, /DATABASE_URL: is not a URL/],
    ['a non-http POSTHOG_HOST', [], { DATABASE_URL: DB, POSTHOG_API_KEY: KEY, POSTHOG_HOST: 'ftp://posthog.example' }, /POSTHOG_HOST: must be an http\(s\) URL/],
    ['a host that is not a URL', ['--posthog-host', 'us.i.posthog.com'], { DATABASE_URL: DB, POSTHOG_API_KEY: KEY }, /POSTHOG_HOST: is not a URL/],
    ['a negative batch size', ['--batch-size', '-5'], { DATABASE_URL: DB, POSTHOG_API_KEY: KEY }, /--batch-size.*whole number from 1/],
    ['a non-integer batch size from the environment', [], { DATABASE_URL: DB, POSTHOG_API_KEY: KEY, POSTHOG_OUTBOX_BATCH_SIZE: '10.5' }, /batch-size.*whole number/],
    ['zero concurrency', ['--concurrency', '0'], { DATABASE_URL: DB, POSTHOG_API_KEY: KEY }, /--concurrency.*whole number from 1/],
    ['a lease shorter than a request', ['--lease-seconds', '5', '--request-timeout', '10000'], { DATABASE_URL: DB, POSTHOG_API_KEY: KEY }, /--lease-seconds: \(5 s\) must be longer than --request-timeout/],
    ['an unknown flag', ['--batchsize', '10'], { DATABASE_URL: DB, POSTHOG_API_KEY: KEY }, /unknown option '--batchsize'/],
  ])('%s: exits 2, says so in one line, leaks nothing', async (_label, args, env, message) => {
    const result = await runCli(['worker', ...args], { env: { DATABASE_URL: undefined, POSTHOG_API_KEY: undefined, POSTHOG_HOST: undefined, ...env } });
    expect(result.code).toBe(2);
    const stderr = result.stderr.replace(/npm warn.*\n/g, '');
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')[0]).toMatch(message);
    expect(stderr).not.toContain('s3cret-pw');
    expect(stderr).not.toContain(KEY);
  });

  it('an unreachable database: exits 1, names the server, hides the password', async () => {
    const result = await runCli(['worker'], { env: { DATABASE_URL: DB, POSTHOG_API_KEY: KEY, POSTHOG_HOST: undefined } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cannot reach the database at postgres://ops:***@127.0.0.1:1/app');
    expect(result.stderr).not.toContain('s3cret-pw');
  });
});
