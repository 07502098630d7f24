/** What the client tests share: an event, the caller's own table, and what the outbox holds. */
import type postgres from 'postgres';
import { expect } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import type { OutboxEvent } from '../../src/record/event.ts';
import { queuedEvents } from '../support/queued.ts';
import { outboxEmpty } from '../support/worker.ts';

export function event(name = 'chat_started', i = 0): OutboxEvent {
  return {
    event: name,
    distinctId: `user_${i}`,
    properties: { i, $groups: { organization: 'org_1' }, organization_id: 'org_1' },
    groups: { organization: 'org_1' },
    profiles: { user: { id: `user_${i}`, fields: { email: `u${i}@example.com` } } },
  };
}

/** An event `record()` refuses (an empty distinct id) before any SQL. */
export const badEvent = (): OutboxEvent => ({ ...event('bad'), distinctId: '' });

/** The caller's own table, written in the same transactions as the events. */
export const CREATE_MESSAGES = 'CREATE TABLE IF NOT EXISTS messages (id serial PRIMARY KEY, body text NOT NULL)';

/** The outbox's events (packs opened) and the caller's messages, each sorted, through a separate postgres.js connection. */
export async function committed(sql: postgres.Sql): Promise<{ events: string[]; messages: string[] }> {
  const events = (await queuedEvents(sql)).sort((a, b) => (a.event < b.event ? -1 : a.event > b.event ? 1 : 0));
  const messages = await sql<{ body: string }[]>`SELECT body FROM messages ORDER BY body`;
  return { events: events.map((r) => r.event), messages: messages.map((r) => r.body) };
}

/** What a handler throws after recording, to roll its transaction back. */
export const failure = () => new Error('handler failed after recording');

/** A handler of the delivery tests: records in its client's transaction, then commits, or throws `failure()` when `fail`. */
export type DeliveryHandler = (i: number, fail: boolean) => Promise<string[]>;

/**
 * Runs 20 calls of each handler (every fourth rolled back), waits for the running worker to deliver, checks
 * that every committed event arrived once and no rolled-back one did, and returns how many arrived per name
 * and how many `messages` rows the handlers committed.
 */
export async function deliverThroughHandlers(
  handlers: readonly DeliveryHandler[],
  capture: CaptureServer,
  sql: postgres.Sql,
): Promise<{ byEvent: Record<string, number>; messages: number }> {
  const runs = handlers.flatMap((handler) =>
    Array.from({ length: 20 }, (_, i) => handler(i, i % 4 === 3).catch((error: Error) => (error.message === failure().message ? null : Promise.reject(error)))),
  );
  const committed = (await Promise.all(runs)).flatMap((uuids) => uuids ?? []);
  expect(committed).toHaveLength(15 * handlers.length);
  await capture.waitFor((events) => events.filter((e) => e.event.endsWith('_committed')).length >= committed.length, { timeoutMs: 20_000 });
  await outboxEmpty(sql, { what: 'the outbox to drain' });
  const delivered = capture.events.filter((e) => !e.event.startsWith('$'));
  expect(delivered.map((e) => e.uuid).sort()).toEqual([...committed].sort());
  expect(delivered.filter((e) => e.event.endsWith('_rolled_back'))).toEqual([]);
  const byEvent = Object.fromEntries(Object.entries(Object.groupBy(delivered, (e) => e.event)).map(([name, events]) => [name, events!.length]));
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM messages`;
  return { byEvent, messages: row!.n };
}
