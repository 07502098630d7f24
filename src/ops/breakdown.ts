/**
 * The status broken down: the backlog by event name and the profiles PostHog knows by kind. Their totals are
 * `readStatus`'s (`backlog`, `due`, `retrying`; `profiles.known`) when read in the same snapshot. Read-only.
 */
import type postgres from 'postgres';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import { query } from '../sql/statement.ts';
import * as q from './inspect.sql.ts';

export interface BacklogByEvent {
  /** Event names, most queued first, up to the limit. */
  events: { event: string; queued: number; due: number; retrying: number; oldestAgeMs: number }[];
  /** How many event names are queued in all (more than `events` holds when the limit cut the list). */
  names: number;
}

/** The queued events by name, up to `limit` names (default 50). Counts every row (a full scan of the outbox, like `readStatus`). */
export async function readBacklogByEvent(sql: postgres.Sql, options: { schema?: string; limit?: number } = {}): Promise<BacklogByEvent> {
  const rows = await query(sql, q.backlogByEvent(options.schema ?? DEFAULT_SCHEMA), { limit: options.limit ?? 50 });
  return {
    events: rows.map((r) => ({ event: r.event, queued: r.queued, due: r.due, retrying: r.retrying, oldestAgeMs: Math.round(r.oldest_age_ms) })),
    names: rows[0]?.names ?? 0,
  };
}

export interface ProfilesOfKind {
  kind: string;
  known: number;
  /** The oldest last identify of a profile of this kind. */
  oldestSentAt: string;
}

/** Users, automation personas and organizations PostHog has been told about, by kind (kinds with none left out). */
export async function readProfilesByKind(sql: postgres.Sql, options: { schema?: string } = {}): Promise<ProfilesOfKind[]> {
  const rows = await query(sql, q.profilesByKind(options.schema ?? DEFAULT_SCHEMA));
  return rows.map((r) => ({ kind: r.kind, known: r.known, oldestSentAt: r.oldest_sent_at.toISOString() }));
}
