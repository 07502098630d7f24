/**
 * The fault suite on Capture V1: real worker processes (`posthog-outbox worker --capture-mode v1`) against the
 * capture server answering a verdict per event. Side by side, each event PostHog answered `ok` or `warning`
 * arrives once and is never sent again, each `drop` is a dead letter with PostHog's details, each `retry` is
 * sent again until taken; SIGKILLed mid-drain, nothing is lost and a dropped event is never delivered.
 */
import { describe, expect, it } from 'vitest';
import type { BatchItem } from '../../dev/capture/types.ts';
import { faultSuite } from '../support/faults.ts';
import { summarize } from '../support/processes.ts';
import { deadLetterRows } from '../support/worker.ts';

const f = faultSuite('phc_faults_v1');
// A request timeout no loaded machine reaches: a request that times out was not answered, so its events are
// sent again (the connection-loss rules, faults-posthog.test.ts), which is not what these scenarios count.
const V1 = ['--request-timeout', '15s', '--batch-size', '500', '--capture-mode', 'v1'];
const seq = (e: BatchItem) => Number(e.properties?.seq);
/** How many requests carried `uuid`, whatever their answer. */
const sends = (uuid: string) => f.capture.requests.filter((r) => r.uuids.includes(uuid)).length;

/**
 * seq % 10: 1 warning, 2 drop (over the quota), 3 retry twice each (then ok), the rest ok. The retries are
 * counted per event: two workers send in any order, so a budget shared by all would give one event a third.
 */
function mixedVerdicts(): void {
  f.capture.verdictWhere((e) => seq(e) % 10 === 1, 'warning', { details: 'person_processing_disabled' });
  f.capture.verdictWhere((e) => seq(e) % 10 === 2, 'drop', { details: 'billing_limit_exceeded' });
  const retried = new Map<string, number>();
  const retryAgain = (e: BatchItem) => {
    const times = retried.get(String(e.uuid)) ?? 0;
    if (seq(e) % 10 !== 3 || times >= 2) return false;
    retried.set(String(e.uuid), times + 1);
    return true;
  };
  f.capture.verdictWhere(retryAgain, 'retry', { details: 'not_persisted' });
}

describe('fault suite: Capture V1, worker processes', () => {
  it('two workers, a mix of ok, warning, drop and retry over 4,000 events: each answered event sent once, drops dead-lettered, retries until taken', async () => {
    const started = Date.now();
    const committed = await f.commit(4_000);
    mixedVerdicts();
    f.spawnWorker(V1);
    f.spawnWorker(V1);
    await f.drained();
    const s = await summarize('V1 verdicts, two workers', committed, f.capture, f.db.sql, started);
    const rest = (r: number) => committed.filter((_, n) => n % 10 === r);
    const delivered = committed.filter((_, n) => n % 10 !== 2);
    expect(s.lost).toBe(0);
    expect(s.duplicates).toBe(0);
    expect(s.delivered).toBe(delivered.length);
    // Sent once each, but the retried events: three times (retry, retry, ok).
    expect(committed.filter((_, n) => n % 10 !== 3 && sends(committed[n]!) !== 1)).toEqual([]);
    expect(rest(3).filter((u) => sends(u) !== 3)).toEqual([]);
    expect(f.capture.requests.every((r) => r.path === '/i/v1/analytics/events')).toBe(true);
    const dead = await deadLetterRows(f.db.sql);
    expect(dead.map((d) => d.uuid).sort()).toEqual(rest(2).sort());
    expect(dead.every((d) => d.reason.includes('billing_limit_exceeded'))).toBe(true);
    expect(f.capture.events.filter((e) => e.verdict === 'warning')).toHaveLength(400);
  }, 120_000);

  it('a worker SIGKILLed mid-drain: nothing lost, a dropped event never delivered and dead-lettered once', async () => {
    const started = Date.now();
    const committed = await f.commit(6_000);
    mixedVerdicts();
    f.capture.delayNext(4, 200); // requests in flight when the kill comes
    const w = f.spawnWorker(V1);
    await f.capture.waitForRequests(3, { timeoutMs: 20_000 });
    await w.kill();
    f.spawnWorker(V1);
    await f.drained();
    const s = await summarize('V1 verdicts, SIGKILL mid-drain', committed, f.capture, f.db.sql, started);
    expect(s.lost).toBe(0);
    const counts = f.capture.countsByUuid();
    const dropped = committed.filter((_, n) => n % 10 === 2);
    expect(dropped.filter((u) => counts.has(u))).toEqual([]);
    const dead = await deadLetterRows(f.db.sql);
    expect(dead.map((d) => d.uuid).sort()).toEqual([...dropped].sort());
    expect(committed.filter((u, n) => n % 10 !== 2 && !counts.has(u))).toEqual([]);
  }, 120_000);
});
