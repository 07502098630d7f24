/**
 * Waking up after a PostgreSQL restart: restart after restart (down for 1.5 to 16 s, some back to back), an
 * event committed as soon as the server is back is delivered within a few seconds, and only once.
 *
 * What it took before:
 * - Every run starts from a pg-boss drain job. pg-boss fetches jobs only every 30 s while it counts on its
 *   LISTEN connection, and that connection misses the job's NOTIFY while it reconnects after a restart, with
 *   a backoff that doubles to 30 s and is reset only by a reconnect that succeeds (so after back-to-back
 *   restarts it is at 30 s). The worker now wakes pg-boss's fetch when its job has not started within a
 *   second (worker/scheduling/worker.ts `expectJob`).
 * - The worker's own pool (postgres.js) waits before reconnecting, up to 20 s after a few refused attempts: the
 *   idle probe and the drain pass waited that long once the server was back. It waits at most 1 s now
 *   (worker/lifecycle/lifecycle.ts `reconnectDelaySeconds`).
 * Measured before, down 1.5, 4, 8, 16, 3, 12 s: 1.5, 3.0, 7.0, 13.9, 26.9, 17.9 s from commit to delivery.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../dev/embedded-postgres.ts';
import { attributedEvent, migrate, record } from '../../src/index.ts';
import { startWorker, type Logger, type OutboxWorker } from '../../worker/index.ts';
import { SOAK } from '../support/soak.ts';
import { outboxEmpty } from '../support/worker.ts';

const KEY = 'phc_wakeup';
const NAME = `wakeup-${process.pid}`;
/**
 * How long PostgreSQL stays down at each restart (ms): short and long outages, and a short one right after a
 * long one (pg-boss's LISTEN reconnect backoff is then at its longest). `npm test` has one of each (the
 * outages are the scenario: 11.5 s of it); `npm run soak` six, up to 16 s.
 */
const DOWN_MS = SOAK ? [1_500, 4_000, 8_000, 16_000, 3_000, 2_000] : [1_500, 8_000, 2_000];
/** A few seconds at worst (1-1.5 s measured), with margin for a slow, shared 2-core machine. */
const BOUND_MS = 10_000;

let server: EmbeddedServer;
let capture: CaptureServer;
let sql: postgres.Sql;
let worker: OutboxWorker | undefined;
/** The worker's log and the restarts, printed when an event is late. */
const lines: string[] = [];
const line = (level: string) => (o: object, m?: string) => lines.push(`${new Date().toISOString()} ${level} ${m} ${JSON.stringify(o)}`);
const logger: Logger = { info: line('info'), warn: line('warn'), error: line('error') };

beforeAll(async () => {
  server = await startEmbeddedPostgres({ name: NAME, keepData: true });
  capture = await startCaptureServer({ apiKey: KEY });
  sql = postgres(server.url, { max: 2, onnotice: () => {} });
  await migrate({ databaseUrl: server.url });
});
afterAll(async () => {
  await worker?.stop(5_000);
  await sql?.end({ timeout: 1 }).catch(() => undefined);
  await capture?.close();
  await server?.stop(); // the last start was without keepData: this stop deletes the folder
});

/** Fast shutdown (open connections are terminated), down for `downMs`, started again on the same port. */
async function restart(downMs: number, keepData: boolean): Promise<void> {
  const port = server.port;
  await server.stop();
  await new Promise((r) => setTimeout(r, downMs)); // the scenario: the server is down this long
  server = await startEmbeddedPostgres({ name: NAME, port, keepData });
}

/** Commits one event; the test's own pool may first hand out a connection the restart closed: try again. */
async function commitOne(i: number): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      const [uuid] = await sql.begin((tx) =>
        record(tx, [attributedEvent({ organization: { id: 'org_1' }, user: { id: `user_${i}` } }, 'after_restart', { i })]),
      );
      return uuid!;
    } catch (error) {
      if (attempt >= 20) throw error;
      await new Promise((r) => setTimeout(r, 50)); // a pause before trying again, not a wait for a condition
    }
  }
}

it(
  `after each of ${DOWN_MS.length} restarts, an event committed at once is delivered within ${BOUND_MS / 1000} s, and once`,
  async () => {
    worker = await startWorker({ databaseUrl: server.url, posthog: { apiKey: KEY, host: capture.url, requestTimeoutMs: 5_000 }, logger });
    const first = await commitOne(-1);
    await capture.waitFor((events) => events.some((e) => e.uuid === first), { timeoutMs: 20_000, what: 'the first event' });

    const committed = [first];
    const waits: number[] = [];
    for (const [i, downMs] of DOWN_MS.entries()) {
      // the last event is settled (its drain loop may still be ending: the restart then cuts into it)
      await outboxEmpty(sql, { what: 'the outbox to be empty before the restart' });
      await restart(downMs, i < DOWN_MS.length - 1);
      lines.push(`${new Date().toISOString()} restarted after ${downMs} ms down`);
      const uuid = await commitOne(i);
      const committedAt = Date.now();
      committed.push(uuid);
      // waits on past the bound, so that a late event says how late (the old code: up to 30 s)
      await capture.waitFor((events) => events.some((e) => e.uuid === uuid), { timeoutMs: 120_000, what: `the event committed after restart ${i + 1}` });
      waits.push(Date.now() - committedAt);
    }
    console.log(`commit to delivery after each restart (down ${DOWN_MS.join(', ')} ms): ${waits.join(', ')} ms`);
    if (Math.max(...waits) >= BOUND_MS) console.log(`the worker's log:\n${lines.join('\n')}`);

    expect(waits.filter((ms) => ms >= BOUND_MS)).toEqual([]);
    expect(capture.duplicates()).toEqual([]);
    const counts = capture.countsByUuid();
    expect(committed.filter((uuid) => counts.get(uuid) !== 1)).toEqual([]);
  },
  10 * 60_000,
);
