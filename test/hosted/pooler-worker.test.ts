/**
 * The worker and the session-needing CLI commands behind a real PgBouncer: a transaction-mode pooler is
 * detected at start and refused with exit 2 and a message that says what to do; `--direct-url` /
 * `DIRECT_DATABASE_URL` gives them their own connection while the application writes through the pooler;
 * a session-mode pooler and a direct connection are accepted.
 */
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import type { OutboxEvent } from '../../src/record/event.ts';
import { record } from '../../src/record/record.ts';
import { behindTransactionPooler } from '../../src/connection/pooler.ts';
import { runCli } from '../support/cli.ts';
import type { TestDatabase } from '../support/db.ts';
import { runPoolerTests, startPgBouncer, type PgBouncer } from '../support/pgbouncer.ts';
import { startWorkerProcess, type WorkerProcess } from '../support/processes.ts';
import { databaseAndCapture, outboxCount, outboxEmpty } from '../support/worker.ts';

const KEY = 'phc_pooler_test_key';
let db: TestDatabase;
let capture: CaptureServer;
let transactionPool: PgBouncer;
let sessionPool: PgBouncer;

const event: OutboxEvent = {
  event: 'tool_called',
  distinctId: 'user_1',
  properties: { $groups: { organization: 'org_1' } },
  groups: { organization: 'org_1' },
  profiles: {},
};

describe.skipIf(!runPoolerTests())('behind PgBouncer', () => {
  databaseAndCapture(KEY, (started) => ({ db, capture } = started));
  const spawned: WorkerProcess[] = [];
  beforeAll(async () => {
    transactionPool = await startPgBouncer(db.url, { poolMode: 'transaction', poolSize: 4 });
    sessionPool = await startPgBouncer(db.url, { poolMode: 'session', poolSize: 20 });
  });
  afterAll(async () => {
    await transactionPool?.stop();
    await sessionPool?.stop();
  });
  afterEach(async () => {
    await Promise.all(spawned.splice(0).map((w) => (w.child.exitCode === null && w.child.signalCode === null ? w.kill() : undefined)));
  });
  const worker = (databaseUrl: string, args: string[] = []) => {
    const w = startWorkerProcess({ databaseUrl, apiKey: KEY, host: capture.url }, args);
    spawned.push(w);
    return w;
  };

  it('the check tells a transaction-mode pooler from a session-mode pooler and a direct connection', async () => {
    expect(await behindTransactionPooler(transactionPool.url(db.url))).toBe(true);
    expect(await behindTransactionPooler(sessionPool.url(db.url))).toBe(false);
    expect(await behindTransactionPooler(db.url)).toBe(false);
  });

  it('a worker whose DATABASE_URL is a transaction-mode pooler exits 2 saying to set DIRECT_DATABASE_URL, password masked', async () => {
    const w = worker(transactionPool.url(db.url));
    expect(await w.exited).toBe(2);
    expect(w.output()).toMatch(/--database-url \(DATABASE_URL\): .* leads to a transaction-mode connection pooler/);
    expect(w.output()).toContain('DIRECT_DATABASE_URL (--direct-url)');
    expect(w.output()).not.toContain(':postgres@');
  });

  it('the same pooled URL in --direct-url is refused as DIRECT_DATABASE_URL', async () => {
    const w = worker(db.url, ['--direct-url', transactionPool.url(db.url)]);
    expect(await w.exited).toBe(2);
    expect(w.output()).toMatch(/--direct-url \(DIRECT_DATABASE_URL\): .* transaction-mode connection pooler/);
  });

  it('DATABASE_URL pooled, --direct-url direct: the worker delivers what the application recorded through the pooler', async () => {
    const app = postgres(transactionPool.url(db.url), { prepare: false, max: 2, onnotice: () => {} });
    try {
      const [uuid] = await app.begin((tx) => record(tx, event));
      const w = worker(transactionPool.url(db.url), ['--direct-url', db.url]);
      await capture.waitFor(() => capture.countsByUuid().has(uuid!), { timeoutMs: 20_000, what: 'the event' });
      await outboxEmpty(db.sql, { what: 'the outbox to drain' });
      expect(await w.stop()).toBe(0);
    } finally {
      await app.end();
    }
  });

  it('a worker behind a session-mode pooler starts and delivers', async () => {
    const [uuid] = await db.sql.begin((tx) => record(tx, event));
    const w = worker(sessionPool.url(db.url));
    await capture.waitFor(() => capture.countsByUuid().has(uuid!), { timeoutMs: 20_000, what: 'the event' });
    expect(await w.stop()).toBe(0);
  });

  it('backfill-profiles (a session-level advisory lock) refuses a transaction-mode pooler before running any query', async () => {
    const result = await runCli(['backfill-profiles', '--users-query', "SELECT 1 AS id, 'a@example.com' AS email, NULL AS name"], {
      env: { DATABASE_URL: transactionPool.url(db.url), DIRECT_DATABASE_URL: undefined },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^posthog-outbox: --database-url \(DATABASE_URL\): .* transaction-mode connection pooler/);
    expect(await outboxCount(db.sql)).toBe(0);
  });

  it('migrate refuses a transaction-mode pooler (exit 2) and runs with DIRECT_DATABASE_URL', async () => {
    const pooled = await runCli(['migrate'], { env: { DATABASE_URL: transactionPool.url(db.url), DIRECT_DATABASE_URL: undefined } });
    expect(pooled.code).toBe(2);
    expect(pooled.stderr).toContain('--database-url (DATABASE_URL): ');
    expect(pooled.stderr).toContain('transaction-mode connection pooler');
    const direct = await runCli(['migrate'], { env: { DATABASE_URL: transactionPool.url(db.url), DIRECT_DATABASE_URL: db.url } });
    expect(direct.stderr).toBe('');
    expect(direct.code).toBe(0);
    expect(direct.stdout).toContain('up to date');
  });
});
