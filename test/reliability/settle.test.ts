/**
 * The settle step's brakes: PostgreSQL refusing to settle a batch PostHog has already accepted never sends
 * it again. Each case is a real refusal (a missing grant, a role's statement_timeout, a value a trigger
 * refuses, the session killed mid-settle); each checks that every committed event reaches the endpoint once,
 * that nothing is left queued without a visible reason, and that the failing runs back off rather than loop.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attributedEvent, record } from '../../src/index.ts';
import { readStatus } from '../../src/ops/status.ts';
import type { OutboxWorker } from '../../worker/index.ts';
import { docBlock } from '../support/docs.ts';
import { inProcessWorkers, nothingInFlight, until, type WorkerFixture, outboxEmpty } from '../support/worker.ts';

let fixture: WorkerFixture;
const start = inProcessWorkers('phc_settle', (f) => (fixture = f), { concurrency: 1, backoff: { baseMs: 200, maxMs: 2_000 } });

const event = (i: number, user = `user_${i % 7}`) =>
  attributedEvent(
    { organization: { id: `org_${i % 3}`, name: `Org ${i % 3}` }, user: { id: user, email: `${user}@example.com`, name: `Person ${i}` } },
    'chat_message_sent',
    { i },
  );

async function recordEvents(count: number, make = event): Promise<string[]> {
  const uuids: string[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i) }, (_, k) => make(i + k));
    uuids.push(...(await fixture.db.sql.begin((tx) => record(tx, batch))));
  }
  return uuids;
}

/** Every uuid of `uuids` received, none more than once; returns how many requests the capture server saw. */
function expectEachOnce(uuids: readonly string[]): void {
  const counts = fixture.capture.countsByUuid();
  for (const uuid of uuids) expect(counts.get(uuid), `uuid ${uuid}`).toBe(1);
  expect(fixture.capture.duplicates()).toEqual([]);
}

/** Waits until the worker's drain passes are failing, and returns its state then. */
async function untilFailing(worker: OutboxWorker) {
  await until(
    () => worker.drainState.failingSince,
    (since) => since !== null,
    { what: 'a failed drain pass' },
  );
  return { ...worker.drainState };
}

describe('PostgreSQL refuses to settle a batch PostHog accepted', () => {
  it('a value the settle step refuses (a trigger on identities): the accepted rows are deleted anyway, each event sent once, the failing runs back off', async () => {
    const { sql } = fixture.db;
    await sql.unsafe(`CREATE FUNCTION public.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.entity_id = 'poison' THEN RAISE EXCEPTION 'identities refuses %', NEW.entity_id USING ERRCODE = '22P02'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON posthog_outbox.identities FOR EACH ROW EXECUTE FUNCTION public.refuse_poison();`);
    try {
      // 42 good events around 2 whose user the settle step refuses (the shape of the measurement)
      const uuids = await recordEvents(44, (i) => event(i, i === 10 || i === 30 ? 'poison' : `user_${i % 7}`));
      const failed: string[] = [];
      const worker = await start();
      worker.on('failedPass', (reason) => failed.push(reason));
      await outboxEmpty(sql, { what: 'the outbox to empty' });
      const state = await untilFailing(worker);
      expect(state.reason).toMatch(/^settling a batch failed, 44 delivered event\(s\) deleted without re-identification.*22P02 identities refuses poison/);
      // the runs after keep delivering nothing twice while the refusal lasts (the poison rows are gone, so they succeed)
      await nothingInFlight(fixture.capture); // the outbox is empty: nothing more can be sent
      expectEachOnce(uuids);
      expect(fixture.capture.events.length).toBe(44);
      expect(failed.length).toBeGreaterThanOrEqual(1);
      expect(failed.length).toBeLessThanOrEqual(3);
      // status says it, as the worker recorded it
      const status = await readStatus(sql);
      expect(status.drainFailing?.reason ?? '').toContain('identities refuses poison');
      // a later event of a good user: the run succeeds, and the worker says so
      await record(sql, event(100));
      await until(
        () => worker.drainState.failingSince,
        (since) => since === null,
        { what: 'the drain passes to succeed again' },
      );
      expect((await readStatus(sql)).drainFailing).toBeNull();
    } finally {
      await sql.unsafe('DROP TRIGGER refuse_poison ON posthog_outbox.identities; DROP FUNCTION public.refuse_poison()');
    }
  });

  it('the batch transaction is lost after PostHog accepted (its session killed while settling): the rows, claimed again, are settled unsent', async () => {
    const { sql } = fixture.db;
    // The first DELETE of outbox rows kills its own session (a sequence counts across rolled-back transactions).
    await sql.unsafe(`CREATE SEQUENCE public.kill_once;
      CREATE FUNCTION public.kill_settle() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF nextval('public.kill_once') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NULL; END $$;
      CREATE TRIGGER kill_settle AFTER DELETE ON posthog_outbox.outbox FOR EACH STATEMENT EXECUTE FUNCTION public.kill_settle();`);
    try {
      const uuids = await recordEvents(20);
      const worker = await start();
      await outboxEmpty(sql, { what: 'the outbox to empty', timeoutMs: 30_000 });
      expectEachOnce(uuids);
      expect(fixture.capture.events.filter((e) => e.event === 'chat_message_sent')).toHaveLength(20);
      // the 20 events (in the run whose transaction was lost) and the identifies of 7 users and 3 organizations
      await until(
        () => worker.totals.delivered,
        (n) => n === 30,
        { what: 'the identifies' },
      );
      expect(worker.drainState.failedPasses + worker.totals.passes).toBeGreaterThan(1);
      const [{ killed }] = (await sql`SELECT last_value::int AS killed FROM public.kill_once`) as unknown as [{ killed: number }];
      expect(killed).toBeGreaterThanOrEqual(2); // the kill happened, and a later delete went through
    } finally {
      await sql.unsafe('DROP TRIGGER kill_settle ON posthog_outbox.outbox; DROP FUNCTION public.kill_settle(); DROP SEQUENCE public.kill_once');
    }
  });

  it("a role's statement_timeout too short for the worker (20 ms, as hosted platforms set per role): every event delivered once", async () => {
    const { sql, name } = fixture.db;
    const uuids = await recordEvents(3_000);
    await sql.unsafe(`ALTER DATABASE "${name}" SET statement_timeout = '20ms'`);
    try {
      const worker = await start();
      await outboxEmpty(sql, { what: 'the outbox to empty', timeoutMs: 60_000 });
      expectEachOnce(uuids);
      expect(fixture.capture.events.filter((e) => e.event === 'chat_message_sent')).toHaveLength(3_000);
      expect(worker.drainState.failedPasses).toBe(0);
    } finally {
      await sql.unsafe(`ALTER DATABASE "${name}" RESET statement_timeout`);
    }
  });
});

describe('a missing grant (the worker role without write access to identities)', () => {
  const suffix = randomBytes(4).toString('hex');
  const role = `posthog_outbox_worker_${suffix}`;
  let adminUrl: string;
  beforeAll(() => {
    adminUrl = fixture.db.url;
  });
  afterAll(async () => {
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await admin.end();
  });

  it('each event is sent once and deleted; the failed passes are counted, back off, and show in status and /healthz', async () => {
    const { sql } = fixture.db;
    const grants = docBlock('docs/hosted-postgres.md', 'sql grants').replaceAll('posthog_outbox_worker', role);
    await sql.unsafe(grants.replace(/CREATE ROLE posthog_outbox_writer[\s\S]*?-- The worker/, '-- The worker'));
    await sql.unsafe(`REVOKE INSERT, UPDATE ON posthog_outbox.identities FROM ${role}`);
    const url = new URL(fixture.db.url);
    url.username = role;
    url.password = 'change-me';
    const uuids = await recordEvents(300);
    const worker = await start({ databaseUrl: url.toString(), batchSize: 100, metrics: { port: 0, host: '127.0.0.1' }, unhealthyAfterMs: 1_500 });
    const failed: string[] = [];
    worker.on('failedPass', (reason) => failed.push(reason));
    await outboxEmpty(sql, { what: 'the outbox to empty', timeoutMs: 30_000 });
    const state = await untilFailing(worker);
    expect(state.reason).toContain('42501');
    expectEachOnce(uuids);
    const status = await readStatus(sql);
    expect(status.drainFailing?.reason).toContain('permission denied for table identities');
    // /healthz: the drain check fails once runs have failed for unhealthyAfterMs (new events keep them failing)
    const health = async () => {
      await record(sql, event(Math.floor(Math.random() * 1e6), `fresh_${randomBytes(3).toString('hex')}`));
      const res = await fetch(`${worker.healthUrl}/healthz`);
      return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
    };
    const unhealthy = await until(health, (h) => h.status === 503, { what: '/healthz to say unavailable', timeoutMs: 20_000 });
    expect(unhealthy.body.checks).toMatchObject({ database: 'ok', drain: 'down' });
    const metrics = await (await fetch(`${worker.healthUrl}/metrics`)).text();
    const counted = Number(/^posthog_outbox_failed_passes_total (\d+)$/m.exec(metrics)?.[1]);
    expect(counted).toBe(failed.length);
    // backed off: 200 ms doubling to 2 s between failed passes, not a run every few milliseconds
    const elapsed = Date.now() - state.failingSince!.getTime();
    expect(failed.length).toBeLessThan(elapsed / 150 + 3);
    // the grant comes back: runs succeed again, /healthz says ok
    await sql.unsafe(`GRANT INSERT, UPDATE ON posthog_outbox.identities TO ${role}`);
    await until(health, (h) => h.status === 200, { what: '/healthz to recover', timeoutMs: 20_000 });
    expect(worker.drainState.failingSince).toBeNull();
    await outboxEmpty(sql, { what: 'the outbox to empty' });
    expect(fixture.capture.duplicates()).toEqual([]);
  });
});
