/**
 * `/healthz` and `/metrics` when the outbox table cannot be read: held under `LOCK TABLE ... IN ACCESS
 * EXCLUSIVE MODE` by another session, or gone with its schema (`DROP SCHEMA posthog_outbox CASCADE`).
 * `/healthz` reads the outbox table itself and answers 503 within its bound, saying why; `/metrics` answers
 * within ~2 s, without the gauges it could not read (and `posthog_outbox_tables_up 0`), never hanging and
 * never failing the whole scrape.
 */
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { boundedRead, ReadTimeout, unreadableReason } from '../../worker/health/bounded-read.ts';
import { startWorker, type OutboxWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { createWorkerDatabase, until } from '../support/worker.ts';

let db: TestDatabase;
let capture: CaptureServer;
let worker: OutboxWorker;

beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_health' });
  worker = await startWorker({
    databaseUrl: db.url,
    posthog: { apiKey: 'phc_health', host: capture.url },
    metrics: { port: 0, host: '127.0.0.1' },
  });
});
afterAll(async () => {
  await worker?.stop(2_000);
  await capture?.close();
  await db?.drop();
});

/** A GET and how long it took. */
async function get(path: string): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${worker.healthUrl}${path}`, { signal: AbortSignal.timeout(20_000) });
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - started };
}

const sample = (text: string, name: string) => text.split('\n').find((l) => l.startsWith(`${name} `));

/**
 * Scrapes `/metrics` until `posthog_outbox_tables_up` is `up` (a scrape within a second of the last one is
 * served the same reading); every scrape on the way must have answered 200 within 2.5 s. Returns the last body.
 */
async function scrapeUntilTablesUp(up: 0 | 1): Promise<string> {
  const slowOrFailed: { status: number; ms: number }[] = [];
  const last = await until(
    async () => {
      const r = await get('/metrics');
      if (r.status !== 200 || r.ms >= 2_500) slowOrFailed.push({ status: r.status, ms: r.ms });
      return r;
    },
    (r) => sample(r.body, 'posthog_outbox_tables_up') === `posthog_outbox_tables_up ${up}`,
    { what: `posthog_outbox_tables_up ${up}`, timeoutMs: 15_000 },
  );
  expect(slowOrFailed).toEqual([]);
  return last.body;
}

/** Runs `test` while another session holds the outbox table in ACCESS EXCLUSIVE mode. */
async function whileLocked(test: () => Promise<void>): Promise<void> {
  const holder = await db.sql.reserve();
  try {
    await holder`BEGIN`;
    await holder`LOCK TABLE posthog_outbox.outbox IN ACCESS EXCLUSIVE MODE`;
    await test();
  } finally {
    await holder`ROLLBACK`;
    holder.release();
  }
}

it('ready while the outbox can be read: /healthz checks the outbox table, /metrics says the tables were read', async () => {
  await record(db.sql, attributedEvent({ organization: { id: 'org_h', name: 'H' }, user: { id: 'user_h' } }, 'chat_started'));
  const health = await get('/healthz');
  expect(health.status).toBe(200);
  expect(JSON.parse(health.body)).toEqual({ status: 'ok', checks: { database: 'ok', outbox: 'ok', pgboss: 'ok', drain: 'ok' } });
  const metrics = await get('/metrics');
  expect(metrics.status).toBe(200);
  expect(sample(metrics.body, 'posthog_outbox_tables_up')).toBe('posthog_outbox_tables_up 1');
  expect(sample(metrics.body, 'posthog_outbox_backlog')).toMatch(/^posthog_outbox_backlog \d+$/);
});

it('the outbox table locked by another session: /healthz answers 503 within 2.5 s saying it is locked; ready again once it is free', async () => {
  await whileLocked(async () => {
    const health = await get('/healthz');
    expect(health.status).toBe(503);
    expect(health.ms).toBeLessThan(2_500);
    const body = JSON.parse(health.body);
    expect(body.status).toBe('unavailable');
    expect(body.checks.outbox).toMatch(/^(locked|timeout)/); // locked; a timeout if every pooled connection is stuck behind the lock
    expect(body.checks.database).toBe('ok');
  });
  await until(
    () => get('/healthz'),
    (r) => r.status === 200,
    { what: '/healthz to be ready again', timeoutMs: 15_000 },
  );
});

it('the outbox table locked: /metrics answers 200 within 2.5 s, the table gauges left out and posthog_outbox_tables_up 0', async () => {
  await whileLocked(async () => {
    const metrics = await scrapeUntilTablesUp(0);
    expect(sample(metrics, 'posthog_outbox_backlog')).toBeUndefined();
    expect(sample(metrics, 'posthog_outbox_oldest_event_age_seconds')).toBeUndefined();
    // what the worker counts itself is still there
    expect(sample(metrics, 'posthog_outbox_passes_total')).toMatch(/^posthog_outbox_passes_total \d+$/);
    expect(sample(metrics, 'posthog_outbox_target_failing')).toBe('posthog_outbox_target_failing 0');
  });
  expect(sample(await scrapeUntilTablesUp(1), 'posthog_outbox_backlog')).toMatch(/^posthog_outbox_backlog \d+$/);
});

it('the outbox schema dropped: /healthz answers 503 saying the table is missing, /metrics 200 without the table gauges', async () => {
  await db.sql`DROP SCHEMA posthog_outbox CASCADE`;
  const health = await get('/healthz');
  expect(health.status).toBe(503);
  expect(health.ms).toBeLessThan(2_500);
  expect(JSON.parse(health.body).checks.outbox).toMatch(/^missing/);
  const metrics = await scrapeUntilTablesUp(0);
  expect(sample(metrics, 'posthog_outbox_dead_letters')).toBeUndefined();
  expect(sample(metrics, 'posthog_outbox_backlog')).toBeUndefined();
});

describe('the reasons /healthz gives for an unreadable outbox', () => {
  it.each([
    ['55P03', /^locked: s\.outbox is locked by another session/],
    ['57014', /^slow: reading s\.outbox took over/],
    ['42P01', /^missing: s\.outbox does not exist \(run posthog-outbox migrate\)/],
    ['3F000', /^missing: /],
    ['28P01', /^down$/],
  ])('SQLSTATE %s', (code, reason) => {
    expect(unreadableReason(Object.assign(new Error('the database says why, naming hosts and roles'), { code }), 's.outbox')).toMatch(reason);
  });

  it('a read that gets no connection or no answer in time is given up: timeout', async () => {
    const stuck = { begin: () => new Promise(() => {}) } as unknown as postgres.Sql;
    const error = await boundedRead(stuck, { lockMs: 10, statementMs: 10, totalMs: 50 }, async () => 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReadTimeout);
    expect(unreadableReason(error, 's.outbox')).toBe('timeout');
  });
});
