/**
 * Which request an event goes in. Pure.
 *
 * Endpoints: `$ai_*` events (`isAiEvent`) go to PostHog's AI endpoint (`/i/v0/ai/batch/`, 8 MiB per event) in
 * requests of their own; the others to `/batch/` or, in Capture V1 mode, `/i/v1/analytics/events`.
 *
 * The historical lane: an event whose own `timestamp` is more than `historicalAfterMs` old when it is sent goes
 * in a request of its own with `historical_migration: true`, which PostHog ingests in order without its spike
 * detection. The event's timestamp, not when it was recorded: that is what PostHog judges (a backfill recorded
 * now with last month's timestamps is historical; an event recorded with its own time is live until it ages).
 * A claimed batch is sent live requests first, historical last. A pass whose claim comes back full with
 * historical events also opens a live lane (worker/claim/pass.ts) that claims only the rows recorded after that
 * moment, so events recorded while the backlog drains do not wait behind it.
 */
import { isAiEvent } from '../../src/record/validate.ts';

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
