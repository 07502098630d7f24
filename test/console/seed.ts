/** Seeding the outbox for the console's tests: dead letters as the worker writes them. */
import type postgres from 'postgres';

/** Moves outbox rows to the dead letters as the worker does, with a reason and a time of death. */
export async function killEvents(sql: postgres.Sql, uuids: readonly string[], reason: string, diedAt = new Date()): Promise<void> {
  await sql`
    WITH dead AS (DELETE FROM posthog_outbox.outbox WHERE uuid = ANY(${uuids as string[]}::uuid[]) RETURNING *)
    INSERT INTO posthog_outbox.dead_letters (uuid, event, distinct_id, properties, groups, timestamp, user_id, user_profile, automation_id,
      automation_profile, organization_id, organization_profile, attempts, last_error, created_at, reason, died_at)
    SELECT uuid, event, distinct_id, properties, groups, timestamp, user_id, user_profile, automation_id, automation_profile,
      organization_id, organization_profile, 3, last_error, created_at, ${reason}, ${diedAt} FROM dead`;
}

/** Makes the queued events named `stale` 8 days old: the worker dead-letters them unsent (`--max-age`, 7 days). */
export async function stale(sql: postgres.Sql): Promise<void> {
  await sql`UPDATE posthog_outbox.outbox SET created_at = now() - interval '8 days' WHERE event = 'stale'`;
}

/** What `seedOutbox` wrote, for the tests to look for. */
export interface Seeded {
  queued: string[];
  retrying: string[];
  dead: string[];
}

/**
 * An outbox as an operator finds it during a PostHog outage: events of a few names queued (some waiting to
 * retry, the oldest two hours old), dead letters of two reasons, profiles of each kind, and the target failing
 * for 12 minutes. Events are recorded as a handler does (`record`).
 */
export async function seedOutbox(sql: postgres.Sql): Promise<Seeded> {
  const { attributedEvent, record } = await import('../../src/index.ts');
  const context = (user: string) => ({ organization: { id: 'org_acme', name: 'Acme' }, user: { id: user, email: `${user}@example.com` } });
  const names = ['message_sent', 'message_sent', 'message_sent', 'automation_triggered', 'automation_triggered', 'file_uploaded', 'invite_accepted'];
  const queued: string[] = [];
  for (const [i, name] of names.entries()) queued.push(...(await record(sql, attributedEvent(context(`user_${i % 3}`), name, { i }))));
  const retrying = queued.slice(0, 3);
  await sql`UPDATE posthog_outbox.outbox SET attempts = 4, next_attempt_at = now() + interval '3 minutes',
    last_error = 'PostHog answered HTTP 503: Service Unavailable' WHERE uuid = ANY(${retrying}::uuid[])`;
  await sql`UPDATE posthog_outbox.outbox SET created_at = now() - interval '2 hours' WHERE uuid = ${queued[0]!}`;
  const doomed: string[] = [];
  for (const [i, name] of ['file_uploaded', 'file_uploaded', 'report_exported', 'message_sent'].entries())
    doomed.push(...(await record(sql, attributedEvent(context(`user_${i}`), name, { size: 1000 * i }))));
  await killEvents(
    sql,
    doomed.slice(0, 3),
    'PostHog rejected the event (HTTP 400): properties.size must be a number below 2^53',
    new Date(Date.now() - 40 * 60_000),
  );
  await killEvents(sql, doomed.slice(3), 'older than --max-age (7d): dead-lettered unsent', new Date(Date.now() - 5 * 60_000));
  await sql`INSERT INTO posthog_outbox.identities (kind, entity_id, fields, event_at, sent_at) VALUES
    ('user', 'user_0', '{}', now(), now() - interval '20 hours'), ('user', 'user_1', '{}', now(), now() - interval '3 hours'),
    ('user', 'user_2', '{}', now(), now()), ('organization', 'org_acme', '{}', now(), now() - interval '6 hours'),
    ('automation', 'nightly_digest', '{}', now(), now() - interval '1 hour')`;
  await sql`INSERT INTO posthog_outbox.target_health (id, failing_since, reason, updated_at)
    VALUES (1, now() - interval '12 minutes', 'PostHog answered HTTP 503: Service Unavailable', now() - interval '4 seconds')
    ON CONFLICT (id) DO UPDATE SET failing_since = EXCLUDED.failing_since, reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at`;
  return { queued: queued.slice(3), retrying, dead: doomed };
}
