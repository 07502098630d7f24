/**
 * PostgreSQL restarted (stop, start again on the same port) in the middle of a drain and in the middle of
 * writes: the worker process reconnects by itself and carries on; writers get an error for the
 * transactions that failed; everything they committed arrives.
 */
import { createServer } from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../dev/embedded-postgres.ts';
import { attributedEvent, migrate, record } from '../../src/index.ts';
import { startWorkerProcess, summarize, type WorkerProcess } from '../support/processes.ts';
import { until, outboxEmpty } from '../support/worker.ts';

const KEY = 'phc_restart';
const NAME = `restart-${process.pid}`;
let server: EmbeddedServer;
let capture: CaptureServer;
let sql: postgres.Sql;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  server = await startEmbeddedPostgres({ name: NAME, keepData: true });
  capture = await startCaptureServer({ apiKey: KEY });
  sql = postgres(server.url, { max: 4, onnotice: () => {} });
  await migrate({ databaseUrl: server.url });
});
afterAll(async () => {
  await worker?.kill();
  await sql?.end({ timeout: 1 }).catch(() => undefined);
  await capture?.close();
  // the last start was without keepData: this stop deletes the folder
  await server?.stop();
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const health = async (url: string) => {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) })).status;
  } catch {
    return 0;
  }
};

/** Stops PostgreSQL, checks what happens while it is down, starts it again on the same port. */
async function restart(downMs: number, whileDown: () => Promise<void>): Promise<void> {
  const port = server.port;
  await server.stop(); // fast shutdown: open connections are terminated
  const down = Date.now();
  await whileDown();
  await new Promise((r) => setTimeout(r, Math.max(0, downMs - (Date.now() - down)))); // the scenario: down this long
  server = await startEmbeddedPostgres({ name: NAME, port });
}

const context = (i: number) => ({ organization: { id: 'org_1' }, user: { id: `user_${i % 13}` } });

it('restart in the middle of a drain and of writes: the worker carries on, nothing committed is lost', async () => {
  const started = Date.now();
  const committed: string[] = [];
  for (let t = 0; t < 20; t++)
    committed.push(
      ...(await sql.begin((tx) =>
        record(
          tx,
          Array.from({ length: 1000 }, (_, k) => attributedEvent(context(k), 'before_restart', { t, k })),
        ),
      )),
    );
  const healthUrl = `http://127.0.0.1:${await freePort()}`;
  // Request timeout and lease at CI-proof values: the capture server shares this process and the cores with
  // other test files, and a PostHog timeout (a paused, backed-off worker) is not what this test is about.
  worker = startWorkerProcess({ databaseUrl: server.url, apiKey: KEY, host: capture.url }, [
    '--batch-size',
    '200',
    '--lease',
    '10s',
    '--request-timeout',
    '5s',
    '--metrics-port',
    healthUrl.split(':').at(-1)!,
    '--metrics-host',
    '127.0.0.1',
  ]);
  await capture.waitFor(1_000, { timeoutMs: 30_000 });
  expect(await health(healthUrl)).toBe(200);

  // writers keep committing small transactions through the restart
  let writing = true;
  const writerErrors: string[] = [];
  const writer = (async () => {
    let n = 0;
    while (writing) {
      try {
        const uuids = await sql.begin((tx) => record(tx, [attributedEvent(context(n), 'during_restart', { n })]));
        committed.push(...uuids);
      } catch (error) {
        writerErrors.push((error as Error).message);
      }
      n++;
      await new Promise((r) => setTimeout(r, 20)); // the scenario: the writers' pace
    }
  })();

  let statusWhileDown = -1;
  await restart(1_500, async () => {
    statusWhileDown = await health(healthUrl);
  });
  const restartedAt = Date.now();
  expect(statusWhileDown).toBe(503); // not ready while the database is down
  await new Promise((r) => setTimeout(r, 1_000)); // the scenario: writers keep writing for a second after the restart
  writing = false;
  await writer;

  const drained = () => outboxEmpty(sql, { timeoutMs: 90_000, what: 'the outbox to drain after the restart' });
  await drained().catch(async () => {
    // Seen about once in five clean-clone CI runs, never alone: one row left for more than 90 s. Say which row
    // and why (attempts, backoff, last error, the worker's log), then give the worker a few more minutes: a row
    // delivered late is a delay to investigate, a row never delivered breaks the promise and fails the test.
    const rows = await sql`SELECT * FROM posthog_outbox.outbox ORDER BY next_attempt_at LIMIT 5`;
    console.log('rows left 90 s after the restart:', JSON.stringify(rows, null, 1), '\nworker output:\n', worker!.output().slice(-20_000));
    await outboxEmpty(sql, { timeoutMs: 240_000, what: 'the outbox to drain, 90 s + 240 s after the restart' });
    console.log(`the outbox drained ${((Date.now() - restartedAt) / 1000).toFixed(0)} s after the restart`);
  });
  await capture.waitFor(
    () => {
      const counts = capture.countsByUuid();
      return committed.every((u) => counts.has(u));
    },
    { timeoutMs: 30_000, what: 'every committed event' },
  );
  const s = await summarize('PostgreSQL restarted mid-drain and mid-writes', committed, capture, sql, started);
  console.log(
    `  writer transactions that failed with an error during the restart: ${writerErrors.length} (${[...new Set(writerErrors.map((m) => m.slice(0, 60)))].join(' | ')})`,
  );
  expect(s.lost).toBe(0);
  expect(s.delivered).toBe(committed.length);
  expect(writerErrors.length).toBeGreaterThan(0); // the restart was felt, and reported to the writer
  expect(worker.child.exitCode).toBeNull(); // the worker is still running: it reconnected by itself
  expect(
    await until(
      () => health(healthUrl),
      (status) => status === 200,
      { timeoutMs: 60_000, what: 'ready again' },
    ),
  ).toBe(200);
  if (process.env.DEBUG_RESTART) console.log(worker.output());
}, 450_000);
