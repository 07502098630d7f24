/**
 * The fault suite: real PostgreSQL, real worker processes (`posthog-outbox worker`), the capture endpoint
 * with injected faults. Each scenario prints one summary line (committed, delivered, duplicates with the
 * same uuid, dead-lettered, lost, time) and must lose nothing. `npm run soak` runs the same scenarios
 * longer and bigger (SOAK=1).
 */
import { describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { DEFAULT_BACKOFF } from '../../worker/backoff.ts';
import { runCli } from '../support/cli.ts';
import type { TestDatabase } from '../support/db.ts';
import { notPostHogHosts, type Reply } from '../support/hosts.ts';
import { summarize, workerProcesses } from '../support/processes.ts';
import { heldRows, outboxCount, until } from '../support/worker.ts';

const SOAK = process.env.SOAK === '1';
const KEY = 'phc_faults';
/** Short leases so a killed worker's rows come back quickly. */
const FAST = ['--lease', '2s', '--request-timeout', '1s', '--batch-size', '500'];

let db: TestDatabase;
let capture: CaptureServer;
const spawnWorker = workerProcesses(KEY, (started) => ({ db, capture } = started), FAST);

const context = (i: number) => ({
  organization: { id: `org_${i % 7}`, name: `Org ${i % 7}` },
  user: { id: `user_${i % 101}`, email: `u${i % 101}@example.com` },
  threadId: `t_${i}`,
});

/** Commits `n` events in transactions of `perTx`; returns their uuids. */
async function commit(n: number, perTx = 1000, from = 0): Promise<string[]> {
  const uuids: string[] = [];
  for (let start = 0; start < n; start += perTx) {
    const events = Array.from({ length: Math.min(perTx, n - start) }, (_, k) =>
      attributedEvent(context(from + start + k), 'tool_used', { seq: from + start + k }),
    );
    uuids.push(...(await db.sql.begin((tx) => record(tx, events))));
  }
  return uuids;
}

const drained = (timeoutMs = 120_000) =>
  until(
    () => outboxCount(db.sql),
    (n) => n === 0,
    { timeoutMs, what: 'the outbox to drain' },
  );
const arrived = (uuids: readonly string[], timeoutMs = 60_000) =>
  capture.waitFor(
    () => {
      const counts = capture.countsByUuid();
      return uuids.every((u) => counts.has(u));
    },
    { timeoutMs, what: 'every committed event' },
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault suite', () => {
  it('worker SIGKILLed at random points 10 times in a drain of 20k events: nothing lost, duplicates share their uuid', async () => {
    const started = Date.now();
    const committed = await commit(SOAK ? 100_000 : 20_000);
    for (let kill = 0; kill < 10; kill++) {
      const before = capture.events.length;
      const w = spawnWorker();
      // let it get somewhere, then kill it at a random point (possibly mid-request); once every committed event
      // has arrived there is nothing left to interrupt (a fast machine drains 20k within a few workers)
      const target = before + 100 + Math.floor(Math.random() * 200);
      await capture.waitFor(() => capture.events.length > target || capture.accepted >= committed.length, { timeoutMs: 30_000 }).catch(() => undefined);
      if (capture.accepted >= committed.length && (await outboxCount(db.sql)) === 0) {
        await w.kill();
        break;
      }
      await sleep(Math.floor(Math.random() * 400));
      await w.kill();
    }
    spawnWorker();
    await drained();
    await arrived(committed);
    const s = await summarize('SIGKILL x10 mid-drain', committed, capture, db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.delivered).toBe(committed.length);
    expect(s.deadLettered).toBe(0);
    for (const [uuid, copies] of capture.byUuid()) expect(new Set(copies.map((e) => e.timestamp)).size, uuid).toBe(1);
  }, 300_000);

  it('PostHog outage (5xx) while writers keep writing: everything arrives after recovery, requests stay bounded', async () => {
    const started = Date.now();
    const outageMs = SOAK ? 60_000 : 6_000;
    const committed = await commit(2_000);
    capture.failFor(outageMs, 503);
    const outageStart = Date.now();
    spawnWorker(['--request-timeout', '1s', '--batch-size', '500']);
    // writers keep writing through the outage
    let i = 0;
    while (Date.now() - outageStart < outageMs) {
      committed.push(...(await commit(50, 50, 1_000_000 + i++ * 50)));
      await sleep(100);
    }
    const duringOutage = capture.requests.filter((r) => r.at < outageStart + outageMs).length;
    await drained();
    await arrived(committed);
    const s = await summarize(`outage ${outageMs / 1000} s with writers`, committed, capture, db.sql, started);
    console.log(`  requests during the ${outageMs / 1000} s outage: ${duringOutage}`);
    expect(s.lost).toBe(0);
    expect(s.deadLettered).toBe(0);
    // exponential backoff from 1 s: a handful of requests per outage, not one per batch or per write
    expect(duringOutage).toBeLessThan(SOAK ? 40 : 20);
  }, 300_000);

  it.each([
    ['with Retry-After', { retryAfter: 2 }],
    ['without Retry-After', {}],
  ])(
    '429 storm %s: honoured, nothing lost',
    async (label, options) => {
      const started = Date.now();
      const committed = await commit(3_000);
      capture.failNext(6, 429, options);
      spawnWorker(['--request-timeout', '1s', '--batch-size', '500']);
      await drained();
      await arrived(committed);
      const requests = capture.requests;
      if ('retryAfter' in options) {
        // after a 429, nothing more is sent until Retry-After has passed: only the request the other lane (of
        // two) was already building when the 429 reached the worker may follow it within Retry-After. Requests
        // are judged by when posthog-node built them (the envelope's sent_at), not when they arrived (on a
        // loaded machine an in-flight request arrives hundreds of ms later).
        for (const refused of requests.filter((r) => r.status === 429)) {
          const early = requests.filter((r) => {
            const built = Date.parse(r.sentAt ?? '');
            return r.id > refused.id && built > refused.at && built < refused.at + 1_900;
          });
          expect(early.length, `requests built within Retry-After of the 429 at ${refused.at}: ${early.map((r) => r.id).join(', ')}`).toBeLessThanOrEqual(1);
        }
      }
      const s = await summarize(`429 storm ${label}`, committed, capture, db.sql, started);
      expect(s.lost).toBe(0);
      expect(s.delivered).toBe(committed.length);
      expect(s.deadLettered).toBe(0);
    },
    240_000,
  );

  it('slow PostHog (slower than the request timeout) and dropped connections: retried, no loss, no cross-batch leak', async () => {
    const started = Date.now();
    const committed = await commit(3_000);
    capture.delayNext(3, 2_500); // request timeout is 1 s
    capture.dropNext(2);
    capture.dropNext(2, { ingested: true });
    spawnWorker();
    await drained();
    await arrived(committed);
    const s = await summarize('slow and dropped requests', committed, capture, db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.deadLettered).toBe(0);
    // a copy that arrived twice was one the client never saw acknowledged (late); no other duplicates
    expect(capture.duplicates({ ignoreLate: true })).toEqual([]);
    // each request carried events of one claim: no request mixed events from a late batch with another's
    const seqsByRequest = new Map<number, number[]>();
    for (const e of capture.events) seqsByRequest.set(e.requestId, [...(seqsByRequest.get(e.requestId) ?? []), e.properties.seq as number]);
    for (const seqs of seqsByRequest.values()) expect(seqs.length).toBeLessThanOrEqual(500);
  }, 240_000);

  it('four workers draining together: each uuid arrives exactly once', async () => {
    const started = Date.now();
    const committed = await commit(SOAK ? 100_000 : 20_000);
    for (let k = 0; k < 4; k++) spawnWorker(['--batch-size', '500']);
    await drained();
    await arrived(committed);
    const s = await summarize('four workers', committed, capture, db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.duplicates).toBe(0);
    expect(s.delivered).toBe(committed.length);
  }, 300_000);

  it('poison events among good ones: each isolated and dead-lettered with the reason, the rest delivered', async () => {
    const started = Date.now();
    const good = await commit(2_000);
    const poison = await record(
      db.sql,
      [0, 1, 2].map((k) => attributedEvent(context(k), 'poison', { k })),
    );
    capture.rejectEventsWhere((e) => e.event === 'poison', { message: 'event rejected by ingestion' });
    spawnWorker(['--batch-size', '500']);
    // Traffic goes on, as it does in production: a poison event is dead-lettered once PostHog has refused it
    // alone twice *and accepted other events in between* (docs/attribution.md). Without later traffic a
    // refusal cannot be told from a target that refuses everything, and the event waits (up to --max-age).
    const deadCount = () => db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.dead_letters`.then((r) => r[0]!.n);
    for (let i = 0; (await deadCount()) < poison.length && Date.now() - started < 90_000; i++) {
      good.push(...(await commit(1, 1, 10_000 + i)));
      await sleep(250);
    }
    await drained();
    await arrived(good);
    const s = await summarize('poison events', [...good, ...poison], capture, db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.delivered).toBe(good.length);
    const dead = await db.sql<{ uuid: string; reason: string }[]>`SELECT uuid, reason FROM posthog_outbox.dead_letters ORDER BY uuid`;
    expect(dead.map((d) => d.uuid)).toEqual([...poison].sort());
    for (const d of dead) expect(d.reason).toMatch(/400.*event rejected by ingestion/s);
  }, 120_000);

  it('a row corrupted by hand is dead-lettered, not a crash loop', async () => {
    const started = Date.now();
    const good = await commit(500);
    const [bad] = await commit(1, 1, 9_999_999);
    await db.sql`UPDATE posthog_outbox.outbox SET properties = '"not an object"'::jsonb, distinct_id = '' WHERE uuid = ${bad!}`;
    const w = spawnWorker(['--batch-size', '100']);
    await drained();
    await arrived(good);
    const s = await summarize('corrupted row', [...good, bad!], capture, db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.deadLettered).toBe(1);
    expect(w.child.exitCode).toBeNull(); // still running
  }, 60_000);

  it('SIGTERM under load: exits 0 within the shutdown bound, leaves nothing claimed, nothing lost', async () => {
    const started = Date.now();
    const committed = await commit(10_000);
    capture.delayNext(50, 300); // keep batches in flight
    const w = spawnWorker(['--batch-size', '200', '--shutdown-timeout', '3s']);
    await capture.waitForRequests(3, { timeoutMs: 20_000 });
    const stopAt = Date.now();
    const code = await w.stop();
    const tookMs = Date.now() - stopAt;
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(3_000 + 5_000); // the shutdown timeout, plus process teardown
    expect(await heldRows(db.sql)).toBe(0);
    spawnWorker();
    await drained();
    await arrived(committed);
    const s = await summarize('SIGTERM under load', committed, capture, db.sql, started);
    console.log(`  stopped in ${tookMs} ms`);
    expect(s.lost).toBe(0);
  }, 120_000);
});

const host = notPostHogHosts();
/** A host that is not PostHog, on loopback: answers every request with `reply(method)`. */
const notPostHog = async (reply: (method: string) => Reply) => (await host(reply)).url;

async function status(): Promise<{ target: { failingSince: string | null; reason: string | null } | null; backlog: number; deadLetters: number }> {
  const result = await runCli(['status', '--json'], { env: { DATABASE_URL: db.url } });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

const maxAttempts = async () => (await db.sql<{ n: number | null }[]>`SELECT max(attempts)::int AS n FROM posthog_outbox.outbox`)[0]!.n ?? 0;

describe('the delivery promise, against real worker processes', () => {
  it(
    SOAK
      ? 'PostHog outage of 10.5 real minutes, default backoff, writers writing: nothing dead-lettered, all delivered after recovery'
      : 'PostHog outage as long, in attempts, as 30 minutes under the default policy (old --max-attempts 10 passed and ignored): nothing dead-lettered, all delivered after recovery',
    async () => {
      const started = Date.now();
      // The default policy (1 s doubling to 60 s) makes 7 attempts in the first 64 s, then one a minute.
      const thirtyMinutes = 7 + Math.ceil((30 * 60_000 - 64_000) / DEFAULT_BACKOFF.maxMs);
      const committed = await commit(SOAK ? 2_000 : 500);
      capture.failFor(SOAK ? 630_000 : 3_600_000, 503);
      const policy = SOAK ? [] : ['--retry-max-delay', '300ms'];
      const w = spawnWorker(['--request-timeout', '1s', '--batch-size', '500', '--max-attempts', '10', ...policy]);
      let i = 0;
      const outageStart = Date.now();
      for (;;) {
        // writers keep writing through the outage (a backlog that grows faster than a probe's batch would
        // spread the attempts over more rows: fewer per row, the same per worker)
        committed.push(...(await commit(5, 5, 1_000_000 + i++ * 5)));
        await sleep(SOAK ? 1_000 : 250);
        if (SOAK ? Date.now() - outageStart > 630_000 : (await maxAttempts()) >= thirtyMinutes) break;
        if (!SOAK && Date.now() - outageStart > 200_000) throw new Error(`only ${await maxAttempts()} attempts on any row after 200 s of outage`);
      }
      const attemptsMade = await maxAttempts();
      const during = await status();
      expect(during.target?.failingSince).not.toBeNull();
      expect(during.target?.reason).toMatch(/PostHog answered HTTP 503/);
      expect(during.deadLetters).toBe(0);
      const requestsDuring = capture.requests.length;
      capture.failFor(0, 503); // PostHog is back
      const recoveredAt = Date.now();
      await drained(SOAK ? 300_000 : 120_000);
      await arrived(committed);
      const recoveryMs = Date.now() - recoveredAt;
      const s = await summarize(
        SOAK ? 'outage 10.5 min, default backoff, with writers' : `outage of ${attemptsMade} attempts (30 min at the default policy), with writers`,
        committed,
        capture,
        db.sql,
        started,
      );
      console.log(
        `  outage ${Math.round((recoveredAt - outageStart) / 1000)} s, ${requestsDuring} requests during it, most attempts on a row ${attemptsMade}, all delivered ${Math.round(recoveryMs / 1000)} s after recovery`,
      );
      expect(s.lost).toBe(0);
      expect(s.deadLettered).toBe(0);
      expect(s.delivered).toBe(committed.length);
      if (!SOAK) expect(attemptsMade).toBeGreaterThanOrEqual(thirtyMinutes);
      expect(w.output()).toMatch(/--max-attempts .*no longer exists and is ignored/);
      await until(status, (st) => st.target?.failingSince === null, { what: 'status to show the target working', timeoutMs: 10_000 });
    },
    SOAK ? 1_200_000 : 300_000,
  );

  it.each<[string, () => Promise<string>, RegExp]>([
    [
      'a redirecting host (its redirected GET answers 200)',
      () =>
        notPostHog((method) =>
          method === 'POST' ? { status: 301, headers: { Location: 'https://eu.i.posthog.example/batch/' } } : { status: 200, body: '<html>ok</html>' },
        ),
      /redirect to "https:\/\/eu\.i\.posthog\.example\/batch\/"/,
    ],
    [
      'a host that answers 200 with a web page',
      () => notPostHog(() => ({ status: 200, headers: { 'Content-Type': 'text/html' }, body: '<!doctype html><h1>Welcome to nginx!</h1>' })),
      /does not look like PostHog's capture endpoint/,
    ],
    ['a wrong path on a PostHog-compatible server', async () => `${capture.url}/wrong/path`, /HTTP 404 \(check POSTHOG_HOST\)/],
  ])(
    '%s: every row stays queued, status says why; a worker with the right host then delivers them all',
    async (label, makeHost, reason) => {
      const started = Date.now();
      const committed = await commit(500);
      spawnWorker(['--request-timeout', '1s', '--batch-size', '100', '--retry-max-delay', '500ms'], await makeHost());
      await sleep(6_000);
      const st = await status();
      expect(st.backlog).toBe(500);
      expect(st.deadLetters).toBe(0);
      expect(st.target?.failingSince).not.toBeNull();
      expect(st.target?.reason).toMatch(reason);
      expect(capture.events).toHaveLength(0);
      spawnWorker(['--batch-size', '100']);
      await drained();
      await arrived(committed);
      const s = await summarize(label, committed, capture, db.sql, started);
      expect(s.lost).toBe(0);
      expect(s.deadLettered).toBe(0);
      expect(s.delivered).toBe(committed.length);
    },
    120_000,
  );

  it('every request rejected (400, a proxy mangling bodies): nothing dead-lettered, status says PostHog rejects broadly; all delivered once it stops', async () => {
    const started = Date.now();
    const committed = await commit(2_000);
    capture.rejectEventsWhere(() => true, { status: 400, message: 'failed to decode request: gzip: invalid header' });
    spawnWorker(['--request-timeout', '1s', '--batch-size', '500', '--retry-max-delay', '500ms']);
    await sleep(6_000);
    const st = await status();
    expect(st.deadLetters).toBe(0);
    expect(st.backlog).toBe(2_000);
    expect(st.target?.reason).toMatch(/PostHog rejects broadly/);
    const refused = capture.requests.length;
    capture.clearFaults();
    await drained();
    await arrived(committed);
    const s = await summarize('every request rejected (400) for 6 s', committed, capture, db.sql, started);
    console.log(`  requests refused in 6 s: ${refused} (bisecting every event would be ~${2 * 2_000})`);
    expect(s.lost).toBe(0);
    expect(s.deadLettered).toBe(0);
    expect(s.delivered).toBe(committed.length);
  }, 120_000);

  it('one poison event among 1,000: the only dead letter', async () => {
    const started = Date.now();
    const before = await commit(600);
    const [poison] = await record(db.sql, attributedEvent(context(1), 'poison', {}));
    const after = await commit(399, 399, 600);
    capture.rejectEventsWhere((e) => e.event === 'poison', { message: 'event rejected by ingestion' });
    spawnWorker(['--batch-size', '1000']);
    await drained();
    await arrived([...before, ...after]);
    const s = await summarize('one poison event among 1,000', [...before, poison!, ...after], capture, db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.deadLettered).toBe(1);
    expect(s.delivered).toBe(999);
    const dead = await db.sql<{ uuid: string }[]>`SELECT uuid FROM posthog_outbox.dead_letters`;
    expect(dead.map((d) => d.uuid)).toEqual([poison]);
  }, 60_000);
});
