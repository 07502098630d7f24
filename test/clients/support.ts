/** What the client tests share: an event, the caller's own table, and what the outbox holds. */
import type postgres from 'postgres';
import type { OutboxEvent } from '../../src/record/event.ts';
import { queuedEvents } from '../support/queued.ts';

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
