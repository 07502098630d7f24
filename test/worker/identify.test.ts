/**
 * Re-identification with the identities memory: PostHog hears about a user, automation persona or
 * organization when it is first seen, when a known field changes, and when its last identify is older than
 * the refresh interval; never more. Real PostgreSQL, real posthog-node, the capture server; the memory's
 * clock is moved by hand (its `sent_at`) where a test needs time to pass.
 */
import { describe, expect, it } from 'vitest';
import type { CaptureServer, ReceivedEvent } from '../../dev/capture-server.ts';
import { attributedEvent, record, type RunContext } from '../../src/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { startWorkerProcess } from '../support/processes.ts';
import { SOAK } from '../support/soak.ts';
import { inProcessWorkers, nothingInFlight, outboxCount, until, outboxEmpty } from '../support/worker.ts';
import { deleteDeliveredAndRemember } from '../../src/identify/identities.sql.ts';
import { query } from '../../src/sql/statement.ts';

let db: TestDatabase;
let capture: CaptureServer;

const start = inProcessWorkers('phc_identify', (fixture) => ({ db, capture } = fixture), { backoff: { baseMs: 50, maxMs: 200 } });

const context = (user: string, email: string, org = 'org_1'): RunContext => ({
  organization: { id: org, name: `Org ${org}`, slug: org },
  user: { id: user, email, name: `Name ${user}` },
});
const identifies = (events: readonly ReceivedEvent[] = capture.events) => events.filter((e) => e.event === '$identify' || e.event === '$groupidentify');
const drained = () => outboxEmpty(db.sql, { what: 'the outbox to drain', timeoutMs: 20_000 });
/** Everything recorded so far delivered: the outbox empty (identifies are queued in the transaction that deletes their batch), nothing on its way. */
const settle = async () => {
  await drained();
  await nothingInFlight(capture);
};

/** An entity the memory knows: `fields` last sent at `sentAt`, from an event of 2026-01-01, profile version 3. */
const remember = (kind: string, id: string, fields: object, sentAt: string) =>
  db.sql`INSERT INTO posthog_outbox.identities (kind, entity_id, fields, event_at, sent_at, version)
    VALUES (${kind}, ${id}, ${db.sql.json(fields as never)}, '2026-01-01T00:00:00Z', ${sentAt}, 3)`;

describe('the identities memory', () => {
  it('a legacy user’s first event identifies them and their organization; more events of the same profile identify nothing more', async () => {
    await start();
    await record(db.sql, attributedEvent(context('legacy_1', 'old@example.com'), 'chat_started'));
    await settle();
    expect(identifies().map((e) => [e.event, e.distinct_id])).toEqual(
      expect.arrayContaining([
        ['$identify', 'legacy_1'],
        ['$groupidentify', '$organization_org_1'],
      ]),
    );
    expect(identifies()).toHaveLength(2);
    for (let i = 0; i < 5; i++) {
      await record(db.sql, attributedEvent(context('legacy_1', 'old@example.com'), 'chat_started', { i }));
      await new Promise((r) => setTimeout(r, 50)); // the scenario: events a little apart, in runs of their own or not
    }
    await settle();
    expect(capture.events.filter((e) => e.event === 'chat_started')).toHaveLength(6);
    expect(identifies()).toHaveLength(2);
  });

  it('a changed email is identified at the next run, with the newest profile; the organization, unchanged, is not', async () => {
    await start();
    await record(db.sql, attributedEvent(context('u1', 'old@example.com'), 'chat_started'));
    await settle();
    capture.reset();
    await record(db.sql, attributedEvent(context('u1', 'new@example.com'), 'chat_started'));
    await settle();
    expect(identifies().map((e) => [e.event, e.distinct_id, e.properties.$set])).toEqual([['$identify', 'u1', { email: 'new@example.com', name: 'Name u1' }]]);
  });

  it('known profiles: batches repeating what was sent identify nothing; a change later in the same run is identified, once', async () => {
    const fresh = new Date().toISOString();
    await remember('user', 'u1', { email: 'a@example.com', name: 'Name u1' }, fresh);
    await remember('organization', 'org_1', { name: 'Org org_1', slug: 'org_1' }, fresh);
    // A backlog of one record() call per event (one pack each), drained in batches of two: the first two batches
    // repeat the known profile (looked at once, then passed over), the third carries a new email.
    const emails = ['a', 'a', 'a', 'a', 'b', 'b'].map((e) => `${e}@example.com`);
    for (const [i, email] of emails.entries()) {
      await record(db.sql, { ...attributedEvent(context('u1', email), 'chat_started', { i }), timestamp: new Date(Date.now() - 10_000 + i) });
    }
    await start({ batchSize: 2, concurrency: 1 });
    await settle();
    expect(capture.events.filter((e) => e.event === 'chat_started')).toHaveLength(6);
    expect(identifies().map((e) => [e.event, e.distinct_id, e.properties.$set])).toEqual([['$identify', 'u1', { email: 'b@example.com', name: 'Name u1' }]]);
    const [memory] = await db.sql`SELECT fields, version FROM posthog_outbox.identities WHERE kind = 'user' AND entity_id = 'u1'`;
    expect([memory!.fields, Number(memory!.version)]).toEqual([{ email: 'b@example.com', name: 'Name u1' }, 4]);
  });

  it('an unchanged profile is not identified again within the refresh interval, and is once it has passed', async () => {
    await start();
    await record(db.sql, attributedEvent(context('u1', 'a@example.com'), 'chat_started'));
    await settle();
    capture.reset();
    await record(db.sql, attributedEvent(context('u1', 'a@example.com'), 'chat_started'));
    await settle();
    expect(identifies()).toEqual([]);
    // a day and an hour later, for the memory
    await db.sql`UPDATE posthog_outbox.identities SET sent_at = sent_at - interval '25 hours'`;
    await record(db.sql, attributedEvent(context('u1', 'a@example.com'), 'chat_started'));
    await settle();
    expect(
      identifies()
        .map((e) => e.distinct_id)
        .sort(),
    ).toEqual(['$organization_org_1', 'u1']);
  });

  it('an older event’s fields never overwrite a newer one’s', async () => {
    await start();
    await record(db.sql, { ...attributedEvent(context('u1', 'new@example.com'), 'chat_started'), timestamp: new Date('2026-06-02T00:00:00Z') });
    await settle();
    capture.reset();
    // delivered later, but it happened earlier (a retried old event)
    await record(db.sql, { ...attributedEvent(context('u1', 'old@example.com'), 'chat_started'), timestamp: new Date('2026-06-01T00:00:00Z') });
    await settle();
    expect(identifies()).toEqual([]);
    const [memory] = await db.sql`SELECT fields FROM posthog_outbox.identities WHERE kind = 'user' AND entity_id = 'u1'`;
    expect(memory!.fields).toEqual({ email: 'new@example.com', name: 'Name u1' });
  });

  it('identifyRefreshMs 0: every entity once per run, as before', async () => {
    const worker = await start({ identifyRefreshMs: 0 });
    await record(db.sql, attributedEvent(context('u1', 'a@example.com'), 'chat_started'));
    await settle();
    await record(db.sql, attributedEvent(context('u1', 'a@example.com'), 'chat_started'));
    await settle();
    expect(identifies().filter((e) => e.distinct_id === 'u1')).toHaveLength(2);
    expect(worker.totals.identified).toBe(4);
  });

  it('two workers on the same traffic enqueue each change once', async () => {
    await start({ concurrency: 2, batchSize: 20 });
    await start({ concurrency: 2, batchSize: 20 });
    const emails = (round: number) =>
      Array.from({ length: 200 }, (_, i) => attributedEvent(context(`u${i % 25}`, `u${i % 25}.r${round}@example.com`, `org_${i % 5}`), 'tool_used', { i }));
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 10 }, (_, k) => record(db.sql, emails(round).slice(k * 20, k * 20 + 20))));
      await settle();
    }
    const users = identifies().filter((e) => e.event === '$identify');
    // 25 users x 3 email changes, 5 organizations once
    expect(users).toHaveLength(75);
    expect(identifies().filter((e) => e.event === '$groupidentify')).toHaveLength(5);
    for (let u = 0; u < 25; u++) {
      expect(
        users
          .filter((e) => e.distinct_id === `u${u}`)
          .map((e) => (e.properties.$set as { email: string }).email)
          .sort(),
      ).toEqual([0, 1, 2].map((r) => `u${u}.r${r}@example.com`));
    }
  }, 60_000);

  it('an older identify still queued is superseded by a newer one: only the newest profile reaches PostHog', async () => {
    const worker = await start({ concurrency: 1 });
    await record(db.sql, attributedEvent(context('u1', 'first@example.com'), 'chat_started'));
    await capture.waitFor(1, { timeoutMs: 10_000 });
    // PostHog goes down right after accepting the event: the first $identify waits in the outbox
    capture.failFor(60_000, 503);
    await until(
      () => db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox WHERE identity_kind = 'user'`.then((r) => r[0]!.n),
      (n) => n === 1,
      { what: 'the first identify to be queued' },
    );
    // the email changes; the event is delivered directly (PostHog back for it, the first identify still
    // waiting out its backoff, an hour here) and a second identify queued. Faults are cleared, not the log:
    // a reset drops from the log a request already on its way, which the server may still accept.
    capture.clearFaults();
    capture.rejectEventsWhere((e) => e.event === '$identify' || e.event === '$groupidentify', { status: 503 });
    await db.sql`UPDATE posthog_outbox.outbox SET next_attempt_at = now() + interval '1 hour'`;
    await record(db.sql, attributedEvent(context('u1', 'second@example.com'), 'chat_started'));
    await until(
      () => db.sql`SELECT identity_version::int AS v FROM posthog_outbox.outbox WHERE identity_kind = 'user' ORDER BY 1`.then((r) => r.map((x) => x.v)),
      (v) => v.includes(2),
      {
        what: 'the second identify to be queued',
      },
    );
    capture.clearFaults();
    await db.sql`UPDATE posthog_outbox.outbox SET next_attempt_at = now()`;
    await settle();
    // every $identify PostHog accepted during the test: the first profile never was (refused, then superseded)
    const users = identifies().filter((e) => e.event === '$identify');
    expect(users.map((e) => e.properties.$set)).toEqual([{ email: 'second@example.com', name: 'Name u1' }]);
    expect(worker.totals.superseded).toBe(1);
  }, 60_000);

  it('a worker SIGKILLed right after a batch committed: that batch’s identifies are in the outbox, and the next worker delivers them', async () => {
    const child = startWorkerProcess({ databaseUrl: db.url, apiKey: 'phc_identify', host: capture.url });
    try {
      await record(
        db.sql,
        Array.from({ length: 10 }, (_, i) => attributedEvent(context(`k${i}`, `k${i}@example.com`), 'chat_started')),
      );
      await capture.waitFor(10, { timeoutMs: 20_000 });
      capture.failFor(60_000, 503); // nothing more gets through before the kill
      // the batch's transaction committed (its rows are gone): kill at once
      await until(
        () => db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox WHERE identity_kind IS NULL`.then((r) => r[0]!.n),
        (n) => n === 0,
        { what: 'the batch to commit', timeoutMs: 10_000 },
      );
      await child.kill();
    } finally {
      if (child.child.exitCode === null && child.child.signalCode === null) await child.kill();
    }
    const queued = await db.sql<{ event: string }[]>`SELECT event FROM posthog_outbox.outbox ORDER BY event`;
    expect(queued.map((r) => r.event)).toEqual([...Array(1).fill('$groupidentify'), ...Array(10).fill('$identify')]);
    capture.reset();
    await start();
    await settle();
    expect(identifies()).toHaveLength(11);
  }, 60_000);
});

/**
 * The volume test at 1,000 events/s: for 60 s over 1,000 users in 20 organizations, 50 of them changing their
 * email half-way, under `npm run soak`; `npm test` runs 6 s of it at the same rate over a population scaled
 * with it (100 users, 2 organizations, 5 changes), so the identify events per event are the same (1,070 of
 * 60,000 or 107 of 6,000: 0.0178).
 */
const VOLUME = SOAK ? { seconds: 60, users: 1_000, organizations: 20, changing: 50 } : { seconds: 6, users: 100, organizations: 2, changing: 5 };

describe('identify volume', () => {
  it(`1,000 events/s over ${VOLUME.users} users in ${VOLUME.organizations} organizations for ${VOLUME.seconds} s: at most 0.02 identify events per event, each profile the newest`, async () => {
    await start();
    const rate = 1_000;
    const { seconds, users, organizations, changing } = VOLUME;
    const total = rate * seconds;
    // some users change their email half-way through
    const email = (user: number, i: number) => (user < changing && i >= total / 2 ? `user${user}.new@example.com` : `user${user}@example.com`);
    const started = performance.now();
    let issued = 0;
    const inFlight = new Set<Promise<unknown>>();
    while (issued < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
      while (issued < due) {
        const i = issued++;
        const user = i % users;
        const p = record(db.sql, attributedEvent(context(`user_${user}`, email(user, i), `org_${user % organizations}`), 'tool_used', { i })).finally(() =>
          inFlight.delete(p),
        );
        inFlight.add(p);
      }
      await new Promise((r) => setTimeout(r, 5)); // the scenario: events issued at the rate, 5 ms at a time
    }
    await Promise.all(inFlight);
    await outboxEmpty(db.sql, { what: 'the outbox to drain', timeoutMs: 60_000 });
    await settle();
    const delivered = capture.events.filter((e) => e.event === 'tool_used').length;
    const ids = identifies();
    const perEvent = ids.length / delivered;
    console.log(
      `identify volume: ${ids.length} identify events for ${delivered} events = ${perEvent.toFixed(4)} per event (${((performance.now() - started) / 1000).toFixed(0)} s)`,
    );
    expect(delivered).toBe(total);
    expect(perEvent).toBeLessThanOrEqual(0.02);
    // every user and organization on first sight, and the changes
    expect(ids).toHaveLength(users + organizations + changing);
    const last = new Map<string, unknown>();
    for (const e of ids) if (e.event === '$identify') last.set(e.distinct_id, (e.properties.$set as { email: string }).email);
    for (let user = 0; user < users; user++) expect(last.get(`user_${user}`)).toBe(email(user, total - 1));
  }, 180_000);
});

describe('which entities a batch touched (deleteDeliveredAndRemember, in SQL)', () => {
  const row = (uuid: string, at: string, profiles: Record<string, [string, Record<string, unknown>] | null>) => ({
    uuid,
    at,
    user: profiles.user ?? null,
    automation: profiles.automation ?? null,
    organization: profiles.organization ?? null,
  });
  const insert = async (rows: ReturnType<typeof row>[]) => {
    for (const r of rows) {
      await db.sql`INSERT INTO posthog_outbox.outbox (uuid, event, distinct_id, properties, groups, timestamp, user_id, user_profile, automation_id, automation_profile, organization_id, organization_profile)
        VALUES (${r.uuid}, 'e', 'd', '{}', '{}', ${r.at}, ${r.user?.[0] ?? null}, ${r.user ? db.sql.json(r.user[1] as never) : null},
          ${r.automation?.[0] ?? null}, ${r.automation ? db.sql.json(r.automation[1] as never) : null}, ${r.organization?.[0] ?? null}, ${r.organization ? db.sql.json(r.organization[1] as never) : null})`;
    }
  };
  const settle = (uuids: string[], exclude: string[] = [], read: string[] = uuids) =>
    db.sql.begin((tx) => query(tx, deleteDeliveredAndRemember('posthog_outbox'), { uuids, refreshMs: 86_400_000, force: false, exclude, read }));
  const u = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, '0')}`;

  it('each user, persona and organization once, each field at its newest value (never a null), the newest event time; rows deleted', async () => {
    await insert([
      row(u(1), '2026-01-01T00:00:02Z', { user: ['u1', { email: 'new@x.io' }], organization: ['o1', { name: 'Acme' }] }),
      row(u(2), '2026-01-01T00:00:01Z', { user: ['u1', { email: 'old@x.io', name: 'Ann' }], organization: ['o1', { name: 'Old', slug: 'acme' }] }),
      row(u(3), '2026-01-01T00:00:03Z', {
        user: ['u1', {}],
        automation: ['a1', { name: 'Nightly', is_automation: true, owner_user_id: 'u1' }],
        organization: ['o1', { name: null }],
      }),
      row(u(4), '2026-01-01T00:00:04Z', { user: ['u2', {}] }),
      row(u(5), '2026-01-01T00:00:05Z', { user: ['u3', { email: 'kept@x.io' }] }),
    ]);
    const remembered = await settle([u(1), u(2), u(3), u(4)]);
    expect(remembered.map((r) => [r.kind, r.entity_id, r.fields, Number(r.version)]).sort()).toEqual(
      [
        ['automation', 'a1', { name: 'Nightly', is_automation: true, owner_user_id: 'u1' }, 1],
        ['organization', 'o1', { name: 'Acme', slug: 'acme' }, 1],
        ['user', 'u1', { email: 'new@x.io', name: 'Ann' }, 1],
        ['user', 'u2', {}, 1],
      ].sort(),
    );
    const known = await db.sql<
      { kind: string; entity_id: string; event_at: Date }[]
    >`SELECT kind, entity_id, event_at FROM posthog_outbox.identities ORDER BY kind, entity_id`;
    expect(known.map((k) => [k.kind, k.entity_id, k.event_at.toISOString()])).toEqual([
      ['automation', 'a1', '2026-01-01T00:00:03.000Z'],
      ['organization', 'o1', '2026-01-01T00:00:03.000Z'],
      ['user', 'u1', '2026-01-01T00:00:03.000Z'],
      ['user', 'u2', '2026-01-01T00:00:04.000Z'],
    ]);
    // Only the delivered rows are deleted; u3's row (not in the list) stays and touched nothing.
    expect((await db.sql`SELECT uuid FROM posthog_outbox.outbox`).map((r) => r.uuid)).toEqual([u(5)]);
  });

  it('known entities: only a fresh one whose every snapshot repeats what was sent is passed over; the newest snapshot still decides', async () => {
    const fresh = new Date().toISOString();
    await remember('user', 'same', { email: 'a@x.io', name: 'Ann' }, fresh);
    await remember('user', 'reverted', { email: 'a@x.io' }, fresh);
    await remember('user', 'added', { email: 'y@x.io' }, fresh);
    await remember('user', 'stale', { email: 's@x.io' }, '2025-01-01T00:00:00Z');
    await remember('organization', 'o1', { name: 'Acme' }, fresh);
    await insert([
      // a subset of what was sent, twice: nothing to say
      row(u(20), '2026-01-01T00:00:01Z', { user: ['same', { email: 'a@x.io' }], organization: ['o1', { name: 'Acme' }] }),
      row(u(21), '2026-01-01T00:00:02Z', { user: ['same', {}] }),
      // changed in an older event, back to what was sent in the newest: nothing to say either
      row(u(22), '2026-01-01T00:00:01Z', { user: ['reverted', { email: 'b@x.io' }] }),
      row(u(23), '2026-01-01T00:00:02Z', { user: ['reverted', { email: 'a@x.io' }] }),
      // one snapshot repeats, another adds a field: identified, merged
      row(u(24), '2026-01-01T00:00:01Z', { user: ['added', { email: 'y@x.io' }] }),
      row(u(25), '2026-01-01T00:00:02Z', { user: ['added', { email: 'y@x.io', name: 'Yan' }] }),
      // unchanged but its last identify is older than the refresh interval
      row(u(26), '2026-01-01T00:00:01Z', { user: ['stale', { email: 's@x.io' }] }),
    ]);
    const remembered = await settle([u(20), u(21), u(22), u(23), u(24), u(25), u(26)]);
    expect(remembered.map((r) => [r.entity_id, r.fields, Number(r.version)]).sort()).toEqual([
      ['added', { email: 'y@x.io', name: 'Yan' }, 4],
      ['stale', { email: 's@x.io' }, 4],
    ]);
    const versions = await db.sql<{ entity_id: string; version: string }[]>`SELECT entity_id, version FROM posthog_outbox.identities ORDER BY entity_id`;
    expect(Object.fromEntries(versions.map((v) => [v.entity_id, Number(v.version)]))).toEqual({ added: 4, o1: 3, reverted: 3, same: 3, stale: 4 });
  });

  it('on equal timestamps the later-written row wins; excluded entities (identified earlier in the run) are left alone', async () => {
    await insert([
      row(u(10), '2026-01-01T00:00:00Z', { user: ['u1', { email: 'first@x.io' }], organization: ['o1', { name: 'Acme' }] }),
      row(u(11), '2026-01-01T00:00:00Z', { user: ['u1', { email: 'second@x.io' }], organization: ['o1', { name: 'Other' }] }),
    ]);
    const remembered = await settle([u(10), u(11)], ['organization:o1']);
    expect(remembered.map((r) => [r.kind, r.entity_id, r.fields])).toEqual([['user', 'u1', { email: 'second@x.io' }]]);
    expect(await db.sql`SELECT kind FROM posthog_outbox.identities`).toHaveLength(1);
    expect(await outboxCount(db.sql)).toBe(0);
  });
});
