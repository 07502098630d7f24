/**
 * The fault suite, the delivery promise against real worker processes (`posthog-outbox worker`): a PostHog
 * outage as long as 30 minutes in attempts, hosts that are not PostHog, every request rejected. Rows stay
 * queued, status says why, nothing is dead-lettered; all is delivered once PostHog (or the right host) is
 * back. Each scenario prints one summary line. `npm run soak` (SOAK=1) runs the outage for 10.5 real minutes
 * under the default backoff.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF } from '../../worker/settle/backoff.ts';
import { runCli } from '../support/cli.ts';
import { faultSuite, sleep } from '../support/faults.ts';
import { notPostHogHosts, type Reply } from '../support/hosts.ts';
import { summarize } from '../support/processes.ts';
import { SOAK } from '../support/soak.ts';
import { until } from '../support/worker.ts';

const f = faultSuite('phc_faults_target');
const { spawnWorker, commit, drained, arrived } = f;

const host = notPostHogHosts();
/** A host that is not PostHog, on loopback: answers every request with `reply(method)`. */
const notPostHog = async (reply: (method: string) => Reply) => (await host(reply)).url;

async function status(): Promise<{ target: { failingSince: string | null; reason: string | null } | null; backlog: number; deadLetters: number }> {
  const result = await runCli(['status', '--json'], { env: { DATABASE_URL: f.db.url } });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

const maxAttempts = async () => (await f.db.sql<{ n: number | null }[]>`SELECT max(attempts)::int AS n FROM posthog_outbox.outbox`)[0]!.n ?? 0;
const pinned = async () => (await f.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox WHERE rejected_at IS NOT NULL`)[0]!.n;
/** Waits until some rows have been tried `n` times (each time refused: they are still queued). */
const attemptedTimes = (n: number) => until(maxAttempts, (a) => a >= n, { what: `a row tried ${n} times`, timeoutMs: 30_000 });

describe('the delivery promise, against real worker processes', () => {
  it(
    SOAK
      ? 'PostHog outage of 10.5 real minutes, default backoff, writers writing: nothing dead-lettered, all delivered after recovery'
      : 'PostHog outage as long, in attempts, as 30 minutes under the default policy: nothing dead-lettered, all delivered after recovery',
    async () => {
      const started = Date.now();
      // The default policy (1 s doubling to 60 s) makes 7 attempts in the first 64 s, then one a minute.
      const thirtyMinutes = 7 + Math.ceil((30 * 60_000 - 64_000) / DEFAULT_BACKOFF.maxMs);
      const committed = await commit(SOAK ? 2_000 : 500);
      f.capture.failFor(SOAK ? 630_000 : 3_600_000, 503);
      const policy = SOAK ? [] : ['--retry-max-delay', '300ms'];
      spawnWorker(['--request-timeout', '1s', '--batch-size', '500', ...policy]);
      let i = 0;
      const outageStart = Date.now();
      for (;;) {
        // writers keep writing through the outage (a backlog that grows faster than a probe's batch would
        // spread the attempts over more rows: fewer per row, the same per worker); the writers' pace is the scenario's
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
      const requestsDuring = f.capture.requests.length;
      f.capture.failFor(0, 503); // PostHog is back
      const recoveredAt = Date.now();
      await drained(SOAK ? 300_000 : 120_000);
      await arrived(committed);
      const recoveryMs = Date.now() - recoveredAt;
      const s = await summarize(
        SOAK ? 'outage 10.5 min, default backoff, with writers' : `outage of ${attemptsMade} attempts (30 min at the default policy), with writers`,
        committed,
        f.capture,
        f.db.sql,
        started,
      );
      console.log(
        `  outage ${Math.round((recoveredAt - outageStart) / 1000)} s, ${requestsDuring} requests during it, most attempts on a row ${attemptsMade}, all delivered ${Math.round(recoveryMs / 1000)} s after recovery`,
      );
      expect(s.lost).toBe(0);
      expect(s.deadLettered).toBe(0);
      expect(s.delivered).toBe(committed.length);
      if (!SOAK) expect(attemptsMade).toBeGreaterThanOrEqual(thirtyMinutes);
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
    ['a wrong path on a PostHog-compatible server', async () => `${f.capture.url}/wrong/path`, /HTTP 404 \(check POSTHOG_HOST\)/],
  ])(
    '%s: every row stays queued, status says why; a worker with the right host then delivers them all',
    async (label, makeHost, reason) => {
      const started = Date.now();
      const committed = await commit(500);
      spawnWorker(['--request-timeout', '1s', '--batch-size', '100', '--retry-max-delay', '500ms'], await makeHost());
      await attemptedTimes(3);
      const st = await until(status, (s) => s.target?.failingSince != null, { what: 'status to show the target failing' });
      expect(st.backlog).toBe(500);
      expect(st.deadLetters).toBe(0);
      expect(st.target?.reason).toMatch(reason);
      expect(f.capture.events).toHaveLength(0);
      spawnWorker(['--batch-size', '100']);
      await drained();
      await arrived(committed);
      const s = await summarize(label, committed, f.capture, f.db.sql, started);
      expect(s.lost).toBe(0);
      expect(s.deadLettered).toBe(0);
      expect(s.delivered).toBe(committed.length);
    },
    120_000,
  );

  it('every request rejected (400, a proxy mangling bodies): nothing dead-lettered, status says PostHog rejects broadly; all delivered once it stops', async () => {
    const started = Date.now();
    const committed = await commit(2_000);
    f.capture.rejectEventsWhere(() => true, { status: 400, message: 'failed to decode request: gzip: invalid header' });
    spawnWorker(['--request-timeout', '1s', '--batch-size', '500', '--retry-max-delay', '500ms']);
    // Each broad run bisects a little, then stops: events refused alone are pinned (rejected_at), and would be
    // dead-lettered if PostHog accepted anything in between. Wait for a good number of them: none may be.
    await until(pinned, (n) => n >= 10, { what: 'ten events refused alone', timeoutMs: 30_000 });
    const st = await until(status, (s) => /PostHog rejects broadly/.test(s.target?.reason ?? ''), { what: 'status to say PostHog rejects broadly' });
    expect(st.deadLetters).toBe(0);
    expect(st.backlog).toBe(2_000);
    const refused = f.capture.requests.length;
    const refusing = Date.now() - started;
    f.capture.clearFaults();
    await drained();
    await arrived(committed);
    const s = await summarize('every request rejected (400) until 10 events were refused alone', committed, f.capture, f.db.sql, started);
    console.log(`  requests refused in ${(refusing / 1000).toFixed(1)} s: ${refused} (bisecting every event would be ~${2 * 2_000})`);
    expect(s.lost).toBe(0);
    expect(s.deadLettered).toBe(0);
    expect(s.delivered).toBe(committed.length);
  }, 120_000);
});
