/**
 * Which request an event goes in, and where the live lane's claims start. Pure.
 *
 * Endpoints: `$ai_*` events (`isAiEvent`) go to PostHog's AI endpoint (`/i/v0/ai/batch/`, 8 MiB per event) in
 * requests of their own; the others to `/batch/` or, in Capture V1 mode, `/i/v1/analytics/events`.
 *
 * The historical lane: an event whose own `timestamp` is more than `historicalAfterMs` old when it is sent goes
 * in a request of its own with `historical_migration: true`, which PostHog ingests in order without its spike
 * detection. The event's timestamp, not when it was recorded: that is what PostHog judges (a backfill recorded
 * now with last month's timestamps is historical; an event recorded with its own time is live until it ages).
 * A claimed batch is sent live requests first, historical last. A run that claims a backlog of rows recorded
 * more than `historicalAfterMs` ago also opens a live lane (worker/drain.ts) whose claims start at the first
 * uuid of that moment (`uuidAt`, UUIDv7 being write order), so events recorded meanwhile do not wait behind it.
 */
import { isAiEvent } from '../src/outbox/validate.ts';

/** Whether an event stamped `timestamp` goes in the historical lane at `now` (`historicalAfterMs` 0: none does). */
export function isHistorical(timestamp: Date, now: number, historicalAfterMs: number): boolean {
  return historicalAfterMs > 0 && now - timestamp.getTime() > historicalAfterMs;
}

/** The events of one request: all `$ai_*` or none, all historical or none. */
export interface RequestGroup<T> {
  historical: boolean;
  ai: boolean;
  items: T[];
}

/**
 * Splits `items` into the requests they go in, each keeping their order: live analytics, live AI, historical
 * analytics, historical AI (the empty ones left out).
 */
export function requestGroups<T>(
  items: readonly T[],
  eventOf: (item: T) => { event: string; timestamp: Date },
  now: number,
  historicalAfterMs: number,
): RequestGroup<T>[] {
  const groups: RequestGroup<T>[] = [
    { historical: false, ai: false, items: [] },
    { historical: false, ai: true, items: [] },
    { historical: true, ai: false, items: [] },
    { historical: true, ai: true, items: [] },
  ];
  for (const item of items) {
    const e = eventOf(item);
    groups[(isHistorical(e.timestamp, now, historicalAfterMs) ? 2 : 0) + (isAiEvent(e.event) ? 1 : 0)]!.items.push(item);
  }
  return groups.filter((g) => g.items.length > 0);
}

/** The smallest UUIDv7 of millisecond `ms`: every row recorded from then on has a uuid at or after it. */
export function uuidAt(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0').slice(-12);
  return `${hex.slice(0, 8)}-${hex.slice(8)}-0000-0000-000000000000`;
}

/** When a UUIDv7 was made (its first 48 bits, milliseconds since the epoch). */
export function uuidTime(uuid: string): number {
  return Number.parseInt(uuid.slice(0, 8) + uuid.slice(9, 13), 16);
}
