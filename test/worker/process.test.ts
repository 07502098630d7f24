/**
 * `posthog-outbox worker` as a real child process (`node cli/main.ts worker`, configured through the
 * environment and flags): killed with SIGKILL while a batch is in flight, stopped with SIGTERM while a batch
 * is in flight (finished, or given back when it outlasts the shutdown timeout), and refusing bad
 * configuration. The capture server holds requests (`delayNext`) so each signal lands mid-batch.
 */
import { describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import type { OutboxEvent } from '../../src/record/event.ts';
import { record } from '../../src/record/record.ts';
import { runCli } from '../support/cli.ts';
import type { TestDatabase } from '../support/db.ts';
import { workerProcesses } from '../support/processes.ts';
import { deadLetterRows, heldRows, nothingInFlight, outboxCount, until, outboxEmpty } from '../support/worker.ts';

const KEY = 'phc_process_test_key';
let db: TestDatabase;
let capture: CaptureServer;
const spawnWorker = workerProcesses(KEY, (started) => ({ db, capture } = started));

const event = (i: number): OutboxEvent => ({
  event: 'tool_called',
  distinctId: `user_${i % 31}`,
  properties: { seq: i, $groups: { organization: 'org_1' } },
  groups: { organization: 'org_1' },
  profiles: {},
});

/** Commits `n` events in one transaction, each recorded on its own (a row each); returns their uuids. */
const commit = (n: number) =>
  db.sql.begin(async (tx) => {
    const uuids: string[] = [];
    for (let i = 0; i < n; i++) uuids.push(...(await record(tx, event(i))));
    return uuids;
  });

const claimed = () => heldRows(db.sql);
const drained = () => outboxEmpty(db.sql, { timeoutMs: 60_000, what: 'the outbox to drain' });

/** Every committed uuid arrived; each copy of an event is identical (same uuid, timestamp and content). */
function expectAllArrivedIdentically(committed: readonly string[]) {
  const byUuid = capture.byUuid();
  expect(committed.filter((uuid) => !byUuid.has(uuid))).toEqual([]);
  for (const [uuid, copies] of byUuid) {
    const [first, ...rest] = copies.map((c) => JSON.stringify(c));
    for (const copy of rest) expect(copy, `copies of ${uuid}`).toBe(first);
  }
}

describe('worker process', () => {
  it('SIGKILLed while a batch is in flight: a new worker delivers every event, a duplicate only as a same-uuid, same-timestamp copy', async () => {
    const committed = await commit(2_000);
    // The first two requests (one per lane) are held at the capture server: the kill lands mid-batch.
    capture.delayNext(2, 60_000);
    const args = ['--batch-size', '500', '--concurrency', '2', '--request-timeout', '3s', '--lease', '4s'];
    const first = spawnWorker(args);
    await capture.waitForRequests(2, { timeoutMs: 30_000, what: 'two batches in flight' });
    expect(await claimed()).toBe(1_000); // two claims of 500 held, nothing deleted yet
    expect(await first.kill()).toBeNull();
    expect(first.child.signalCode).toBe('SIGKILL');
    // Killed: nothing was deleted, and its claims end with its connections, well before the 4 s lease.
    expect(await outboxCount(db.sql)).toBe(2_000);
    await until(claimed, (n) => n === 0, { timeoutMs: 3_000, what: "the killed worker's claims to end" });

    spawnWorker(args);
    await drained();
    await capture.waitFor(() => committed.every((uuid) => capture.countsByUuid().has(uuid)), { timeoutMs: 30_000, what: 'every committed event' });
    await nothingInFlight(capture);

    expectAllArrivedIdentically(committed);
    expect(await deadLetterRows(db.sql)).toEqual([]);
    // The only duplicates are the held batches' events, which PostHog had taken in although the killed
    // worker never got the answer (`late`); every copy the workers saw acknowledged is unique.
    expect(capture.duplicates({ ignoreLate: true })).toEqual([]);
    const late = capture.events.filter((e) => e.late).length;
    expect(late).toBeLessThanOrEqual(1_000);
    expect(capture.events).toHaveLength(2_000 + late);
  }, 90_000);

  it('SIGTERM while batches are in flight: they finish, the process exits 0, no row is left claimed, the next worker delivers the rest once', async () => {
    const committed = await commit(2_000);
    capture.delayNext(2, 1_000); // answered well within the shutdown timeout
    const first = spawnWorker(['--batch-size', '500', '--concurrency', '2', '--shutdown-timeout', '20s']);
    await capture.waitForRequests(2, { timeoutMs: 30_000, what: 'two batches in flight' });
    expect(await first.stop()).toBe(0);
    expect(first.output()).toContain('worker stopped');
    // The two batches in flight were answered and settled; nothing more was claimed after the signal.
    expect(await claimed()).toBe(0);
    expect(capture.events).toHaveLength(1_000);
    expect(capture.events.filter((e) => e.late)).toEqual([]);
    expect(await outboxCount(db.sql)).toBe(1_000);
    const [left] = await db.sql<{ attempts: number }[]>`SELECT max(attempts)::int AS attempts FROM posthog_outbox.outbox`;
    expect(left!.attempts).toBe(0);

    spawnWorker(['--batch-size', '500']);
    await drained();
    await capture.waitFor(2_000, { timeoutMs: 30_000 });
    await nothingInFlight(capture);
    expectAllArrivedIdentically(committed);
    expect(capture.duplicates()).toEqual([]);
    expect(capture.events).toHaveLength(2_000);
  }, 90_000);

  it('hung (SIGSTOP) with batches in flight: PostgreSQL ends its sessions after the lease, and another worker delivers its rows', async () => {
    const committed = await commit(1_000);
    capture.delayNext(2, 60_000);
    const args = ['--batch-size', '500', '--concurrency', '2', '--request-timeout', '1s', '--lease', '3s'];
    const hung = spawnWorker(args);
    await capture.waitForRequests(2, { timeoutMs: 30_000, what: 'two batches in flight' });
    hung.child.kill('SIGSTOP'); // alive, connections open, silent: only the lease can free its rows
    const stoppedAt = Date.now();
    expect(await claimed()).toBe(1_000);
    await until(claimed, (n) => n === 0, { timeoutMs: 15_000, what: "the lease to end the hung worker's claims" });
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(2_000); // not before the lease (3 s after its last statement)
    spawnWorker(args);
    await drained();
    await capture.waitFor(() => committed.every((uuid) => capture.countsByUuid().has(uuid)), { timeoutMs: 30_000, what: 'every committed event' });
    expectAllArrivedIdentically(committed);
    hung.child.kill('SIGCONT');
    expect(await hung.kill()).toBeNull();
    expect(await deadLetterRows(db.sql)).toEqual([]);
  }, 90_000);

  it('SIGTERM while a batch outlasts the shutdown timeout: exits 0 without waiting for it, gives its rows back (attempt not counted)', async () => {
    const committed = await commit(1_000);
    capture.delayNext(2, 60_000); // held far longer than the shutdown timeout
    // A long request timeout and lease: only ending the claims' transactions lets the next worker have the rows soon.
    const first = spawnWorker(['--batch-size', '500', '--concurrency', '2', '--request-timeout', '30s', '--lease', '10m', '--shutdown-timeout', '1s']);
    await capture.waitForRequests(2, { timeoutMs: 30_000, what: 'two batches in flight' });
    expect(await claimed()).toBe(1_000);
    const stoppedAt = Date.now();
    expect(await first.stop()).toBe(0);
    // Well before the 30 s request timeout or the 600 s lease it would otherwise have waited on.
    expect(Date.now() - stoppedAt).toBeLessThan(20_000);
    expect(first.output()).toContain('their rows were released');
    expect(await claimed()).toBe(0);
    const [left] = await db.sql<{ attempts: number; due: number }[]>`
      SELECT max(attempts)::int AS attempts, count(*) FILTER (WHERE next_attempt_at <= now())::int AS due FROM posthog_outbox.outbox`;
    expect(left).toEqual({ attempts: 0, due: 1_000 });

    spawnWorker(['--batch-size', '500']);
    await drained();
    await capture.waitFor(() => committed.every((uuid) => capture.countsByUuid({ ignoreLate: true }).has(uuid)), {
      timeoutMs: 30_000,
      what: 'every committed event',
    });
    expectAllArrivedIdentically(committed);
    // The held requests' events, if PostHog took them in, are late copies with the same uuid.
    expect(capture.duplicates({ ignoreLate: true })).toEqual([]);
    expect(await deadLetterRows(db.sql)).toEqual([]);
  }, 90_000);
});

describe('worker configuration errors', () => {
  const PASSWORD = 'pw-S3cret-9f2';
  const DB = `postgres://ops:${PASSWORD}@127.0.0.1:1/app`;
  const env = (extra: Record<string, string>) => ({ DATABASE_URL: DB, POSTHOG_API_KEY: KEY, POSTHOG_HOST: undefined, ...extra });

  it.each<[string, string[], Record<string, string | undefined>, RegExp]>([
    ['no API key', [], { POSTHOG_API_KEY: undefined }, /^posthog-outbox: --posthog-api-key \(POSTHOG_API_KEY\): is not set/],
    ['an empty API key', [], { POSTHOG_API_KEY: '  ' }, /--posthog-api-key \(POSTHOG_API_KEY\): is not set/],
    ['no DATABASE_URL', [], { DATABASE_URL: undefined }, /--database-url \(DATABASE_URL\): is not set/],
    ['a non-http POSTHOG_HOST', [], { POSTHOG_HOST: 'ftp://posthog.example' }, /--posthog-host \(POSTHOG_HOST\): must be an http\(s\) URL/],
    ['a negative --batch-size', ['--batch-size', '-5'], {}, /--batch-size \(POSTHOG_OUTBOX_BATCH_SIZE\): must be a whole number from 1 to 10000, got "-5"$/],
    [
      'a lease shorter than a request',
      ['--lease', '5s', '--request-timeout', '10s'],
      {},
      /--lease \(POSTHOG_OUTBOX_LEASE\): must be longer than the request timeout \(10s\), got 5s$/,
    ],
    ['an unknown flag', ['--batchsize', '10'], {}, /unknown option '--batchsize'/],
    ['a host with no scheme', [], { POSTHOG_HOST: 'eu.i.posthog.com' }, /--posthog-host \(POSTHOG_HOST\): is not a URL/],
    ['a host that is only a scheme', ['--posthog-host', 'https://'], {}, /--posthog-host \(POSTHOG_HOST\): is not a URL/],
    [
      'a non-integer --batch-size',
      ['--batch-size', '12abc'],
      {},
      /--batch-size \(POSTHOG_OUTBOX_BATCH_SIZE\): must be a whole number from 1 to 10000, got "12abc"$/,
    ],
    ['a --max-age without a unit', ['--max-age', '7'], {}, /--max-age \(POSTHOG_OUTBOX_MAX_AGE\): must be a duration from 1m to 3650d, with a unit .*got "7"$/],
    ['a --max-age under a minute', ['--max-age', '30s'], {}, /--max-age \(POSTHOG_OUTBOX_MAX_AGE\): must be a duration from 1m to 3650d, got 30s$/],
    [
      'a zero --retry-max-delay',
      ['--retry-max-delay', '0'],
      {},
      /--retry-max-delay \(POSTHOG_OUTBOX_RETRY_MAX_DELAY\): must be a duration from 10ms to 1h, got 0$/,
    ],
    [
      'a --request-timeout in bare milliseconds',
      ['--request-timeout', '10000'],
      {},
      /--request-timeout \(POSTHOG_OUTBOX_REQUEST_TIMEOUT\): .*with a unit .*got "10000"$/,
    ],
    ['an exponent --request-timeout', ['--request-timeout', '1e4'], {}, /--request-timeout \(POSTHOG_OUTBOX_REQUEST_TIMEOUT\): .*got "1e4"$/],
    [
      'a --metrics-port out of range',
      ['--metrics-port', '70000'],
      {},
      /--metrics-port \(POSTHOG_OUTBOX_METRICS_PORT\): must be a whole number from 0 to 65535, got 70000$/,
    ],
    ['a negative --shutdown-timeout', ['--shutdown-timeout', '-1'], {}, /--shutdown-timeout \(POSTHOG_OUTBOX_SHUTDOWN_TIMEOUT\): .*got "-1"$/],
    [
      'a non-duration POSTHOG_OUTBOX_LEASE',
      [],
      { POSTHOG_OUTBOX_LEASE: 'ten' },
      /--lease \(POSTHOG_OUTBOX_LEASE\): must be a duration from 1s to 1d, .*got "ten"$/,
    ],
    [
      'zero POSTHOG_OUTBOX_CONCURRENCY',
      [],
      { POSTHOG_OUTBOX_CONCURRENCY: '0' },
      /--concurrency \(POSTHOG_OUTBOX_CONCURRENCY\): must be a whole number from 1 to 64, got 0$/,
    ],
    ['an invalid --schema', ['--schema', 'Bad-Schema'], {}, /--schema \(POSTHOG_OUTBOX_SCHEMA\): must match/],
    [
      'a DATABASE_URL with a bad port (the password in it)',
      [],
      { DATABASE_URL: `postgres://ops:${PASSWORD}@db.internal:notaport/app` },
      /--database-url \(DATABASE_URL\): is not a URL/,
    ],
    [
      'a DATABASE_URL of another database',
      [],
      { DATABASE_URL: `mysql://ops:${PASSWORD}@db.internal/app` },
      /--database-url \(DATABASE_URL\): must start with postgres:\/\//,
    ],
  ])('%s: exits 2 with one line naming the setting, never the password or the key', async (_label, args, extra, message) => {
    const result = await runCli(['worker', ...args], { env: env(extra as Record<string, string>) });
    expect(result.code).toBe(2);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '' && !/^npm warn|^\(run with --help|^\(Did you mean/.test(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    for (const secret of [PASSWORD, KEY]) {
      expect(result.stderr).not.toContain(secret);
      expect(result.stdout).not.toContain(secret);
    }
  });

  it('an unreachable database: exits 1, names the server, hides the password', async () => {
    const result = await runCli(['worker'], { env: env({}) });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cannot reach the database at postgres://ops:***@127.0.0.1:1/app');
    expect(result.stderr).not.toContain(PASSWORD);
  });
});
