/**
 * Operator commands as child processes against a real PostgreSQL: `status`, `dead-letters list | retry |
 * purge`. Numbers must match the tables; bad input changes nothing and exits non-zero with one line.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { attributedEvent, type OutboxEvent, record } from '../../src/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { runCli } from '../support/cli.ts';
import { createWorkerDatabase } from '../support/worker.ts';

let db: TestDatabase;
const env = () => ({ DATABASE_URL: db.url });
const context = { organization: { id: 'org_1' }, user: { id: 'user_1' } };

beforeAll(async () => {
  db = await createWorkerDatabase();
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(async () => {
  await db.sql`TRUNCATE posthog_outbox.outbox, posthog_outbox.dead_letters, posthog_outbox.identities`;
});

/** Records each event on its own (a row each, which the tests change by uuid); returns their uuids. */
async function recordEach(list: OutboxEvent[]): Promise<string[]> {
  const uuids: string[] = [];
  for (const event of list) uuids.push(...(await record(db.sql, event)));
  return uuids;
}

/** Records `n` events; returns their uuids. */
function events(n: number, name = 'chat_started'): Promise<string[]> {
  return recordEach(Array.from({ length: n }, (_, i) => attributedEvent(context, name, { i })));
}

/** Moves rows to the dead-letter table as the worker does, with a reason and a death time. */
async function kill(uuids: string[], reason: string, diedAt = new Date()): Promise<void> {
  await db.sql`
    WITH dead AS (DELETE FROM posthog_outbox.outbox WHERE uuid = ANY(${uuids}::uuid[]) RETURNING *)
    INSERT INTO posthog_outbox.dead_letters (uuid, event, distinct_id, properties, groups, timestamp, user_id, user_profile, automation_id,
      automation_profile, organization_id, organization_profile, attempts, last_error, created_at, reason, died_at)
    SELECT uuid, event, distinct_id, properties, groups, timestamp, user_id, user_profile, automation_id, automation_profile,
      organization_id, organization_profile, 3, last_error, created_at, ${reason}, ${diedAt} FROM dead`;
}

describe('status', () => {
  it('reports numbers that match the tables', async () => {
    const due = await events(5);
    const retrying = await events(3, 'tool_retried');
    await db.sql`UPDATE posthog_outbox.outbox SET attempts = 2, next_attempt_at = now() + interval '5 minutes', last_error = '503 Service Unavailable'
      WHERE uuid = ANY(${retrying}::uuid[])`;
    // Two rows held by a worker's claim (a row lock in its open transaction) are still due: status neither
    // waits on the lock nor leaves them out.
    const held = await events(2);
    const claim = await db.sql.reserve();
    try {
      await claim`BEGIN`;
      await claim`SELECT 1 FROM posthog_outbox.outbox WHERE uuid = ANY(${held}::uuid[]) FOR UPDATE`;
      await db.sql`UPDATE posthog_outbox.outbox SET created_at = now() - interval '2 hours' WHERE uuid = ${due[0]!}`;
      const doomed = await events(4);
      await kill(doomed.slice(0, 3), '400 Bad Request: invalid event');
      await kill(doomed.slice(3), 'gave up after 10 attempts: 503');

      const result = await runCli(['status', '--json'], { env: env() });
      expect(result.stderr.replace(/npm warn.*\n/g, '')).toBe('');
      expect(result.code).toBe(0);
      const status = JSON.parse(result.stdout);
      expect(status).toMatchObject({ backlog: 10, due: 7, retrying: 3, deadLetters: 4 });
      expect(status.oldestAgeMs).toBeGreaterThanOrEqual(2 * 3600_000);
      expect(status.oldestAgeMs).toBeLessThan(3 * 3600_000);
      expect(status.deadLettersByReason.map((r: { reason: string; count: number }) => [r.reason, r.count])).toEqual([
        ['400 Bad Request: invalid event', 3],
        ['gave up after 10 attempts: 503', 1],
      ]);
      expect(status.retryingRows.map((r: { uuid: string }) => r.uuid).sort()).toEqual([...retrying].sort());
      expect(status.retryingRows[0]).toMatchObject({ event: 'tool_retried', attempts: 2, lastError: '503 Service Unavailable' });

      const text = await runCli(['status'], { env: env() });
      expect(text.code).toBe(0);
      expect(text.stdout).toContain('backlog       10 event(s): 7 due now (those being sent included), 3 waiting to retry');
      expect(text.stdout).toContain('dead letters  4');
      expect(text.stdout).toMatch(/oldest\s+2h 0m old/);
    } finally {
      // also when an assertion failed: an open transaction holding these rows would hang the next test's TRUNCATE
      await claim`ROLLBACK`.catch(() => undefined);
      claim.release();
    }
  });

  it('reports an empty outbox', async () => {
    const result = await runCli(['status', '--json'], { env: env() });
    expect(JSON.parse(result.stdout)).toMatchObject({
      target: null,
      backlog: 0,
      oldestAgeMs: null,
      nextRetryAt: null,
      deadLetters: 0,
      profiles: { known: 0, oldestSentAt: null },
      deadLettersByReason: [],
      retryingRows: [],
    });
    const text = await runCli(['status'], { env: env() });
    expect(text.stdout).toContain('target        no worker has reported yet');
  });

  it('says when the PostHog target is failing, since when and why; how many profiles PostHog knows and the oldest refresh', async () => {
    await db.sql`INSERT INTO posthog_outbox.target_health (id, failing_since, reason, updated_at)
      VALUES (1, now() - interval '12 minutes', 'the host answered HTTP 301, a redirect to "https://eu.i.posthog.com/batch/"', now() - interval '5 seconds')`;
    await db.sql`INSERT INTO posthog_outbox.identities (kind, entity_id, fields, event_at, sent_at) VALUES
      ('user', 'u1', '{"email":"a@example.com"}', now(), now() - interval '3 hours'), ('organization', 'o1', '{"name":"Acme"}', now(), now())`;
    try {
      const json = JSON.parse((await runCli(['status', '--json'], { env: env() })).stdout);
      expect(json.target.reason).toMatch(/redirect/);
      expect(Date.now() - Date.parse(json.target.failingSince)).toBeGreaterThanOrEqual(12 * 60_000);
      expect(json.profiles.known).toBe(2);
      const text = (await runCli(['status'], { env: env() })).stdout;
      expect(text).toMatch(
        /^target {8}FAILING since \S+ \(12m \d+s; last seen \d+s ago\): the host answered HTTP 301, a redirect to "https:\/\/eu\.i\.posthog\.com\/batch\/"$/m,
      );
      expect(text).toMatch(/^profiles {6}2 known to PostHog; the oldest last identified 3h 0m ago/m);
      await db.sql`UPDATE posthog_outbox.target_health SET failing_since = NULL, reason = NULL`;
      expect((await runCli(['status'], { env: env() })).stdout).toMatch(/^target {8}PostHog accepting \(as of /m);
    } finally {
      await db.sql`TRUNCATE posthog_outbox.target_health, posthog_outbox.identities`;
    }
  });
});

describe('dead-letters', () => {
  it('list shows event, distinct id, reason and attempts, newest first', async () => {
    const [old] = await events(1, 'old_event');
    const [recent] = await events(1, 'recent_event');
    await kill([old!], 'reason one', new Date('2026-01-01T00:00:00Z'));
    await kill([recent!], 'reason two', new Date('2026-06-01T00:00:00Z'));
    const json = await runCli(['dead-letters', 'list', '--json'], { env: env() });
    expect(json.code).toBe(0);
    const rows = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toEqual([
      { uuid: recent, event: 'recent_event', distinctId: 'user_1', attempts: 3, diedAt: '2026-06-01T00:00:00.000Z', reason: 'reason two' },
      { uuid: old, event: 'old_event', distinctId: 'user_1', attempts: 3, diedAt: '2026-01-01T00:00:00.000Z', reason: 'reason one' },
    ]);
    const text = await runCli(['dead-letters', 'list'], { env: env() });
    expect(text.stdout.split('\n')[0]).toMatch(/^uuid\s+event\s+distinct id\s+attempts\s+died at\s+reason$/);
    expect(text.stdout).toContain('recent_event');
  });

  it('retry --id moves exactly those rows back, attempts reset, same uuid and timestamp, due now', async () => {
    const uuids = await events(3);
    const [before] = await db.sql`SELECT timestamp FROM posthog_outbox.outbox WHERE uuid = ${uuids[0]!}`;
    await kill(uuids, 'poison');
    const result = await runCli(['dead-letters', 'retry', '--id', uuids[0]!, '--id', uuids[1]!.toUpperCase()], { env: env() });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('moved 2 dead letter(s) back to the outbox\n');
    const back = await db.sql`SELECT uuid, attempts, last_error, timestamp, next_attempt_at <= now() AS due FROM posthog_outbox.outbox ORDER BY uuid`;
    expect(back.map((r) => r.uuid)).toEqual(uuids.slice(0, 2).sort());
    for (const row of back) expect(row).toMatchObject({ attempts: 0, last_error: null, due: true });
    expect(back.find((r) => r.uuid === uuids[0])!.timestamp).toEqual(before!.timestamp);
    expect(await db.sql`SELECT uuid FROM posthog_outbox.dead_letters`).toEqual([{ uuid: uuids[2] }]);
  });

  it('retry --all moves every dead letter back', async () => {
    await kill(await events(4), 'x');
    const result = await runCli(['dead-letters', 'retry', '--all'], { env: env() });
    expect(result.stdout).toBe('moved 4 dead letter(s) back to the outbox\n');
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: 4 }]);
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.dead_letters`).toEqual([{ n: 0 }]);
  });

  it('retry with an unknown id changes nothing and exits 2', async () => {
    const uuids = await events(1);
    await kill(uuids, 'x');
    const result = await runCli(['dead-letters', 'retry', '--id', uuids[0]!, '--id', '00000000-0000-7000-8000-000000000000'], { env: env() });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no dead letter with uuid 00000000-0000-7000-8000-000000000000; nothing was moved');
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.dead_letters`).toEqual([{ n: 1 }]);
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: 0 }]);
  });

  it('purge --before --yes deletes only those that died before the date', async () => {
    const uuids = await events(3);
    await kill([uuids[0]!], 'a', new Date('2026-01-01T00:00:00Z'));
    await kill([uuids[1]!], 'b', new Date('2026-03-01T00:00:00Z'));
    await kill([uuids[2]!], 'c', new Date('2026-05-01T00:00:00Z'));
    const result = await runCli(['dead-letters', 'purge', '--before', '2026-04-01', '--yes'], { env: env() });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('deleted 2 dead letter(s) that died before 2026-04-01T00:00:00.000Z\n');
    expect(await db.sql`SELECT reason FROM posthog_outbox.dead_letters`).toEqual([{ reason: 'c' }]);
  });

  it('purge without --yes off a terminal refuses and deletes nothing', async () => {
    await kill(await events(1), 'a', new Date('2026-01-01T00:00:00Z'));
    const result = await runCli(['dead-letters', 'purge', '--before', '2026-04-01'], { env: env() });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--yes');
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.dead_letters`).toEqual([{ n: 1 }]);
  });

  it.each([
    ['a malformed date', ['dead-letters', 'purge', '--before', '2026-13-45', '--yes'], /not a date/],
    ['a date in another format', ['dead-letters', 'purge', '--before', '04/01/2026', '--yes'], /not a date/],
    ['a malformed id', ['dead-letters', 'retry', '--id', 'nope'], /"nope" is not a uuid/],
    ['neither --id nor --all', ['dead-letters', 'retry'], /--id/],
    ['both --id and --all', ['dead-letters', 'retry', '--all', '--id', '00000000-0000-7000-8000-000000000000'], /cannot be used with/],
    ['a missing --before', ['dead-letters', 'purge', '--yes'], /--before/],
    ['an unknown subcommand', ['dead-letters', 'resurrect'], /unknown command/],
    ['an unknown flag', ['status', '--colour'], /unknown option/],
    ['a bad limit', ['status', '--limit', '-3'], /whole number/],
  ])('%s exits 2 with a message and changes nothing', async (_label, args, message) => {
    await kill(await events(1), 'a', new Date('2026-01-01T00:00:00Z'));
    const result = await runCli(args, { env: env() });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.dead_letters`).toEqual([{ n: 1 }]);
  });

  it('an unreachable database exits 1 without printing the password', async () => {
    const result = await runCli(['dead-letters', 'list'], { env: { DATABASE_URL: 'postgres://ops:hunter2-secret@127.0.0.1:1/db' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cannot reach the database');
    expect(result.stderr).not.toContain('hunter2-secret');
  });
});

describe('forget (erasure requests)', () => {
  const person = (user: string, org: string, automation?: string) => ({
    organization: { id: org, name: `Org ${org}` },
    user: { id: user, email: `${user}@example.com` },
    ...(automation ? { automation: { id: automation, name: `Auto ${automation}` } } : {}),
  });

  it('deletes a user’s queued events, identify rows, dead letters and remembered profile, and nobody else’s', async () => {
    const ann = await recordEach([attributedEvent(person('ann', 'org_a'), 'chat_started'), attributedEvent(person('ann', 'org_a'), 'chat_started')]);
    const bob = await recordEach([attributedEvent(person('bob', 'org_a'), 'chat_started')]);
    await kill([ann[0]!], '400 Bad Request');
    // an identify row about ann, as the worker writes them, and one about bob
    await db.sql`INSERT INTO posthog_outbox.outbox (uuid, event, distinct_id, properties, groups, timestamp, identity_kind, identity_id, identity_version)
      VALUES (gen_random_uuid(), '$identify', 'ann', '{"$set":{"email":"ann@example.com"}}', '{}', now(), 'user', 'ann', 1),
             (gen_random_uuid(), '$identify', 'bob', '{"$set":{"email":"bob@example.com"}}', '{}', now(), 'user', 'bob', 1)`;
    await db.sql`INSERT INTO posthog_outbox.identities (kind, entity_id, fields, event_at) VALUES
      ('user', 'ann', '{"email":"ann@example.com"}', now()), ('user', 'bob', '{"email":"bob@example.com"}', now())`;
    const result = await runCli(['forget', '--user', 'ann'], { env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('user ann: deleted 2 queued event(s), 1 dead letter(s) and the remembered profile\n');
    const left = await db.sql`SELECT distinct_id FROM posthog_outbox.outbox ORDER BY 1`;
    expect(left.map((r) => r.distinct_id)).toEqual(['bob', 'bob']);
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.dead_letters`).toEqual([{ n: 0 }]);
    expect((await db.sql`SELECT entity_id FROM posthog_outbox.identities`).map((r) => r.entity_id)).toEqual(['bob']);
    const wire = JSON.stringify(await db.sql`SELECT * FROM posthog_outbox.outbox`);
    expect(wire).not.toContain('ann@example.com');
    expect(bob).toHaveLength(1);
  });

  it('forgets an automation persona and an organization (its group-identify too) in one go, as JSON', async () => {
    await recordEach([attributedEvent(person('cid', 'org_z', 'nightly'), 'chat_started'), attributedEvent(person('dan', 'org_y'), 'chat_started')]);
    await db.sql`INSERT INTO posthog_outbox.outbox (uuid, event, distinct_id, properties, groups, timestamp, identity_kind, identity_id, identity_version)
      VALUES (gen_random_uuid(), '$groupidentify', '$organization_org_z', '{"$group_type":"organization","$group_key":"org_z","$group_set":{"name":"Z"}}', '{}', now(), 'organization', 'org_z', 1)`;
    const result = await runCli(['forget', '--automation', 'nightly', '--organization', 'org_z', '--json'], { env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      forgotten: [
        { kind: 'automation', id: 'nightly', queued: 1, deadLetters: 0, profile: false },
        { kind: 'organization', id: 'org_z', queued: 1, deadLetters: 0, profile: false },
      ],
    });
    expect((await db.sql`SELECT distinct_id FROM posthog_outbox.outbox`).map((r) => r.distinct_id)).toEqual(['dan']);
  });

  it.each([
    ['nobody named', [], /--user: say whom to forget/],
    ['an empty id', ['--user', ' '], /--user: must not be empty/],
  ])('%s: exits 2 and deletes nothing', async (_label, args, message) => {
    await events(2);
    const result = await runCli(['forget', ...args], { env: env() });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: 2 }]);
  });
});
