/**
 * The fault suite, worker processes' side: real PostgreSQL, real worker processes (`posthog-outbox worker`)
 * SIGKILLed mid-drain, draining side by side, stopped under load, and a row corrupted by hand. Each scenario
 * prints one summary line (committed, delivered, duplicates with the same uuid, dead-lettered, lost, time)
 * and must lose nothing. `npm run soak` runs the drains at 100k events (SOAK=1). The PostHog side is
 * faults-posthog.test.ts, hosts that are not PostHog faults-target.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { faultSuite, sleep } from '../support/faults.ts';
import { summarize } from '../support/processes.ts';
import { SOAK } from '../support/soak.ts';
import { heldRows, outboxCount } from '../support/worker.ts';

const f = faultSuite('phc_faults_workers');
const { spawnWorker, commit, drained, arrived } = f;

describe('fault suite: worker processes', () => {
  it('worker SIGKILLed at random points 10 times in a drain of 20k events: nothing lost, duplicates share their uuid', async () => {
    const started = Date.now();
    const committed = await commit(SOAK ? 100_000 : 20_000);
    for (let kill = 0; kill < 10; kill++) {
      const before = f.capture.events.length;
      const w = spawnWorker();
      // let it get somewhere, then kill it at a random point (possibly mid-request); once every committed event
      // has arrived there is nothing left to interrupt (a fast machine drains 20k within a few workers)
      const target = before + 100 + Math.floor(Math.random() * 200);
      await f.capture.waitFor(() => f.capture.events.length > target || f.capture.accepted >= committed.length, { timeoutMs: 30_000 }).catch(() => undefined);
      if (f.capture.accepted >= committed.length && (await outboxCount(f.db.sql)) === 0) {
        await w.kill();
        break;
      }
      await sleep(Math.floor(Math.random() * 400)); // the scenario: a random point of the drain
      await w.kill();
    }
    spawnWorker();
    await drained();
    await arrived(committed);
    const s = await summarize('SIGKILL x10 mid-drain', committed, f.capture, f.db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.delivered).toBe(committed.length);
    expect(s.deadLettered).toBe(0);
    for (const [uuid, copies] of f.capture.byUuid()) expect(new Set(copies.map((e) => e.timestamp)).size, uuid).toBe(1);
  }, 300_000);

  it('four workers draining together: each uuid arrives exactly once', async () => {
    const started = Date.now();
    const committed = await commit(SOAK ? 100_000 : 20_000);
    for (let k = 0; k < 4; k++) spawnWorker(['--batch-size', '500']);
    await drained();
    await arrived(committed);
    const s = await summarize('four workers', committed, f.capture, f.db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.duplicates).toBe(0);
    expect(s.delivered).toBe(committed.length);
  }, 300_000);

  it('a row corrupted by hand is dead-lettered, not a crash loop', async () => {
    const started = Date.now();
    const good = await commit(500);
    const [bad] = await commit(1, 1, 9_999_999);
    await f.db.sql`UPDATE posthog_outbox.outbox SET properties = '"not an object"'::jsonb, distinct_id = '' WHERE uuid = ${bad!}`;
    const w = spawnWorker(['--batch-size', '100']);
    await drained();
    await arrived(good);
    const s = await summarize('corrupted row', [...good, bad!], f.capture, f.db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.deadLettered).toBe(1);
    expect(w.child.exitCode).toBeNull(); // still running
  }, 60_000);

  it('SIGTERM under load: exits 0 within the shutdown bound, leaves nothing claimed, nothing lost', async () => {
    const started = Date.now();
    const committed = await commit(10_000);
    f.capture.delayNext(50, 300); // keep batches in flight
    const w = spawnWorker(['--batch-size', '200', '--shutdown-timeout', '3s']);
    await f.capture.waitForRequests(3, { timeoutMs: 20_000 });
    const stopAt = Date.now();
    const code = await w.stop();
    const tookMs = Date.now() - stopAt;
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(3_000 + 5_000); // the shutdown timeout, plus process teardown
    expect(await heldRows(f.db.sql)).toBe(0);
    spawnWorker();
    await drained();
    await arrived(committed);
    const s = await summarize('SIGTERM under load', committed, f.capture, f.db.sql, started);
    console.log(`  stopped in ${tookMs} ms`);
    expect(s.lost).toBe(0);
  }, 120_000);
});
