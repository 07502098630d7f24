/**
 * The fault suite, PostHog's side: real PostgreSQL, real worker processes (`posthog-outbox worker`), the
 * capture endpoint injecting faults (an outage, 429 storms, slow answers and dropped connections, poison
 * events). Each scenario prints one summary line (committed, delivered, duplicates with the same uuid,
 * dead-lettered, lost, time) and must lose nothing. `npm test` shortens the backoff (`--retry-max-delay`)
 * where a scenario is about many failures in a row, not the default policy's waits; `npm run soak` (SOAK=1)
 * runs them under the default policy, and the outage for 60 s.
 */
import { describe, expect, it } from 'vitest';
import { attributedEvent, record } from '../../src/index.ts';
import { context, faultSuite, sleep } from '../support/faults.ts';
import { summarize } from '../support/processes.ts';
import { SOAK } from '../support/soak.ts';

const f = faultSuite('phc_faults_posthog');
const { spawnWorker, commit, drained, arrived } = f;
/** Retries a few hundred ms apart (soak: the default policy, 1 s doubling to 60 s). */
const SHORT_BACKOFF = SOAK ? [] : ['--retry-max-delay', '500ms'];

describe('fault suite: PostHog failing', () => {
  it('PostHog outage (5xx) while writers keep writing: everything arrives after recovery, requests stay bounded', async () => {
    const started = Date.now();
    const outageMs = SOAK ? 60_000 : 6_000;
    const committed = await commit(2_000);
    f.capture.failFor(outageMs, 503);
    const outageStart = Date.now();
    spawnWorker(['--request-timeout', '1s', '--batch-size', '500']);
    // writers keep writing through the outage (the scenario: its length, and the writers' pace)
    let i = 0;
    while (Date.now() - outageStart < outageMs) {
      committed.push(...(await commit(50, 50, 1_000_000 + i++ * 50)));
      await sleep(100);
    }
    const duringOutage = f.capture.requests.filter((r) => r.at < outageStart + outageMs).length;
    await drained();
    await arrived(committed);
    const s = await summarize(`outage ${outageMs / 1000} s with writers`, committed, f.capture, f.db.sql, started);
    console.log(`  requests during the ${outageMs / 1000} s outage: ${duringOutage}`);
    expect(s.lost).toBe(0);
    expect(s.deadLettered).toBe(0);
    // exponential backoff from 1 s: a handful of requests per outage, not one per batch or per write
    expect(duringOutage).toBeLessThan(SOAK ? 40 : 20);
  }, 300_000);

  /** Retry-After in seconds: 1 keeps `npm test` short, the soak run has PostHog's usual 2. */
  const RETRY_AFTER = SOAK ? 2 : 1;
  it.each([
    ['with Retry-After', { retryAfter: RETRY_AFTER }],
    ['without Retry-After', {}],
  ])(
    '429 storm %s: honoured, nothing lost',
    async (label, options) => {
      const started = Date.now();
      const committed = await commit(3_000);
      f.capture.failNext(6, 429, options);
      spawnWorker(['--request-timeout', '1s', '--batch-size', '500', ...SHORT_BACKOFF]);
      await drained();
      await arrived(committed);
      const requests = f.capture.requests;
      if ('retryAfter' in options) {
        // after a 429, nothing more is sent until Retry-After has passed: only the request the other lane (of
        // two) was already building when the 429 reached the worker may follow it within Retry-After. Requests
        // are judged by when posthog-node built them (the envelope's sent_at), not when they arrived (on a
        // loaded machine an in-flight request arrives hundreds of ms later).
        for (const refused of requests.filter((r) => r.status === 429)) {
          const early = requests.filter((r) => {
            const built = Date.parse(r.sentAt ?? '');
            return r.id > refused.id && built > refused.at && built < refused.at + RETRY_AFTER * 1_000 - 100;
          });
          expect(early.length, `requests built within Retry-After of the 429 at ${refused.at}: ${early.map((r) => r.id).join(', ')}`).toBeLessThanOrEqual(1);
        }
      }
      const s = await summarize(`429 storm ${label}`, committed, f.capture, f.db.sql, started);
      expect(s.lost).toBe(0);
      expect(s.delivered).toBe(committed.length);
      expect(s.deadLettered).toBe(0);
    },
    240_000,
  );

  it('slow PostHog (slower than the request timeout) and dropped connections: retried, no loss, no cross-batch leak', async () => {
    const started = Date.now();
    const committed = await commit(3_000);
    f.capture.delayNext(3, 2_500); // request timeout is 1 s
    f.capture.dropNext(2);
    f.capture.dropNext(2, { ingested: true });
    spawnWorker([...SHORT_BACKOFF, '--lease', '2s', '--request-timeout', '1s', '--batch-size', '500']);
    await drained();
    await arrived(committed);
    const s = await summarize('slow and dropped requests', committed, f.capture, f.db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.deadLettered).toBe(0);
    // a copy that arrived twice was one the client never saw acknowledged (late); no other duplicates
    expect(f.capture.duplicates({ ignoreLate: true })).toEqual([]);
    // each request carried events of one claim: no request mixed events from a late batch with another's
    const seqsByRequest = new Map<number, number[]>();
    for (const e of f.capture.events) seqsByRequest.set(e.requestId, [...(seqsByRequest.get(e.requestId) ?? []), e.properties.seq as number]);
    for (const seqs of seqsByRequest.values()) expect(seqs.length).toBeLessThanOrEqual(500);
  }, 240_000);

  it('poison events among good ones: each isolated and dead-lettered with the reason, the rest delivered', async () => {
    const started = Date.now();
    const good = await commit(2_000);
    const poison = await record(
      f.db.sql,
      [0, 1, 2].map((k) => attributedEvent(context(k), 'poison', { k })),
    );
    f.capture.rejectEventsWhere((e) => e.event === 'poison', { message: 'event rejected by ingestion' });
    spawnWorker(['--batch-size', '500']);
    // Traffic goes on, as it does in production: a poison event is dead-lettered once PostHog has refused it
    // alone twice *and accepted other events in between* (docs/attribution.md). Without later traffic a
    // refusal cannot be told from a target that refuses everything, and the event waits (up to --max-age).
    const deadCount = () => f.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.dead_letters`.then((r) => r[0]!.n);
    for (let i = 0; (await deadCount()) < poison.length && Date.now() - started < 90_000; i++) {
      good.push(...(await commit(1, 1, 10_000 + i)));
      await sleep(250); // the scenario: one more event every 250 ms, until every poison event is dead-lettered
    }
    await drained();
    await arrived(good);
    const s = await summarize('poison events', [...good, ...poison], f.capture, f.db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.delivered).toBe(good.length);
    const dead = await f.db.sql<{ uuid: string; reason: string }[]>`SELECT uuid, reason FROM posthog_outbox.dead_letters ORDER BY uuid`;
    expect(dead.map((d) => d.uuid)).toEqual([...poison].sort());
    for (const d of dead) expect(d.reason).toMatch(/400.*event rejected by ingestion/s);
  }, 120_000);

  it('one poison event among 1,000: the only dead letter', async () => {
    const started = Date.now();
    const before = await commit(600);
    const [poison] = await record(f.db.sql, attributedEvent(context(1), 'poison', {}));
    const after = await commit(399, 399, 600);
    f.capture.rejectEventsWhere((e) => e.event === 'poison', { message: 'event rejected by ingestion' });
    spawnWorker(['--batch-size', '1000']);
    await drained();
    await arrived([...before, ...after]);
    const s = await summarize('one poison event among 1,000', [...before, poison!, ...after], f.capture, f.db.sql, started);
    expect(s.lost).toBe(0);
    expect(s.deadLettered).toBe(1);
    expect(s.delivered).toBe(999);
    const dead = await f.db.sql<{ uuid: string }[]>`SELECT uuid FROM posthog_outbox.dead_letters`;
    expect(dead.map((d) => d.uuid)).toEqual([poison]);
  }, 60_000);
});
