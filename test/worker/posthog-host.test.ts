/**
 * A PostHog host with a user name and password in it (`https://user:secret@host`) can never work (fetch
 * refuses credentials in URLs), and its password must not travel into logs, `last_error`,
 * `target_health.reason` or `status`: `startWorker` and `posthog-outbox worker` refuse it at start, naming
 * the setting, and every place that prints or stores text about a request masks URL credentials.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboxError } from '../../src/errors/errors.ts';
import { readStatus } from '../../src/ops/status.ts';
import { redactForStorage } from '../../src/errors/redact.ts';
import { startWorker } from '../../worker/index.ts';
import { TargetHealth } from '../../worker/health/target.ts';
import { runCli } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const PASSWORD = 'pw-H0st-S3cret-77';
const KEY = 'phc_posthog_host_test_key';
/** What fetch says about such a host (undici quotes the URL). */
const FETCH_ERROR = `network error talking to PostHog: TypeError Request cannot be constructed from a URL that includes credentials: http://ops:${PASSWORD}@127.0.0.1:8010/batch/`;

describe('a PostHog host with credentials', () => {
  it.each([
    ['a user and a password', `https://ops:${PASSWORD}@posthog.example`],
    ['a user name alone (a token)', `https://${PASSWORD}@posthog.example`],
  ])('startWorker refuses %s before connecting: OutboxError naming posthog.host, the secret masked', async (_label, host) => {
    const error = await startWorker({
      databaseUrl: 'postgres://app:db-pw@127.0.0.1:1/app',
      posthog: { apiKey: KEY, host },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxError);
    expect((error as OutboxError).field).toBe('posthog.host');
    expect((error as OutboxError).message).toMatch(/^posthog\.host: must not contain a user name or password/);
    expect((error as OutboxError).message).not.toContain(PASSWORD);
  });

  it('text stored or logged about a request has the URL credentials masked, whatever the host', () => {
    const stored = redactForStorage(FETCH_ERROR, [KEY]);
    expect(stored).not.toContain(PASSWORD);
    expect(stored).toContain('http://[redacted]@127.0.0.1:8010/batch/');
    expect(redactForStorage(`see https://ops:${PASSWORD}@us.i.posthog.com/batch/ and mail a@b.example`)).toBe(
      'see https://[redacted]@us.i.posthog.com/batch/ and mail [redacted]',
    );
  });

  describe('in the database', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase();
    });
    afterAll(async () => db?.drop());

    it('target_health.reason is stored masked, and status masks what an older worker stored as is', async () => {
      const log = { info() {}, warn() {}, error() {} };
      await new TargetHealth(db.sql, 'posthog_outbox', log).failing(FETCH_ERROR);
      const [row] = await db.sql<{ reason: string }[]>`SELECT reason FROM posthog_outbox.target_health`;
      expect(row!.reason).not.toContain(PASSWORD);

      // rows written before this version: the reason and a last error with the password in them
      await db.sql`UPDATE posthog_outbox.target_health SET reason = ${FETCH_ERROR}`;
      await db.sql`INSERT INTO posthog_outbox.outbox (uuid, event, distinct_id, properties, groups, timestamp, attempts, next_attempt_at, last_error)
        VALUES ('00000000-0000-7000-8000-000000000001', 'e', 'd', '{}', '{}', now(), 1, now() + interval '1 hour', ${FETCH_ERROR})`;
      const status = await readStatus(db.sql);
      expect(status.target?.reason).toContain('[redacted]@127.0.0.1:8010');
      expect(status.retryingRows[0]?.lastError).toContain('[redacted]@127.0.0.1:8010');
      expect(JSON.stringify(status)).not.toContain(PASSWORD);
    });
  });

  it.each([
    [
      'POSTHOG_HOST',
      { POSTHOG_HOST: `https://ops:${PASSWORD}@posthog.example` },
      [],
      /^posthog-outbox: --posthog-host \(POSTHOG_HOST\): must not contain a user name or password/,
    ],
    [
      '--posthog-host',
      {},
      ['--posthog-host', `http://ops:${PASSWORD}@127.0.0.1:8010`],
      /^posthog-outbox: --posthog-host \(POSTHOG_HOST\): must not contain a user name or password/,
    ],
    [
      'an unparseable POSTHOG_HOST',
      { POSTHOG_HOST: `https://ops:${PASSWORD}@posthog.example:notaport` },
      [],
      /^posthog-outbox: --posthog-host \(POSTHOG_HOST\): is not a URL/,
    ],
  ])(
    'posthog-outbox worker with credentials in %s: exits 2 naming the setting, the password in neither stdout nor stderr',
    async (_label, extra, args, message) => {
      const result = await runCli(['worker', ...args], {
        env: { DATABASE_URL: 'postgres://app:db-pw@127.0.0.1:1/app', POSTHOG_API_KEY: KEY, POSTHOG_HOST: undefined, ...extra },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toContain('cannot reach the database'); // refused before connecting
      for (const out of [result.stdout, result.stderr]) expect(out).not.toContain(PASSWORD);
    },
  );
});
