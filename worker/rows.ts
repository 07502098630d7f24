/**
 * A claimed batch's rows as the claim returns them, and which of them can go to PostHog: an identify
 * superseded by a newer one is deleted unsent; a row older than the maximum age or stored corrupt is
 * dead-lettered unsent; the others are sent as they were recorded. Pure.
 */
import { OutboxError } from '../src/errors.ts';
import { checkStoredEvent } from '../src/outbox/validate.ts';
import type { WireEvent } from './sender.ts';

export interface ClaimedRow {
  uuid: string;
  event: string;
  distinct_id: string;
  properties: Record<string, unknown>;
  groups: Record<string, string>;
  timestamp: Date;
  attempts: number;
  rejected_at: Date | null;
  /** When it came due: where the run's next claim starts (worker/drain.ts). */
  next_attempt_at: Date;
  /** The entities its event touched (their profile snapshots stay in the database). */
  user_id: string | null;
  automation_id: string | null;
  organization_id: string | null;
  /** Older than the maximum age: dead-lettered, not sent. */
  expired: boolean;
  /** An identify row whose entity was identified again since: deleted, not sent. */
  superseded: boolean;
}

/** A claimed batch, sorted by what becomes of each row. */
export interface Triage {
  /** Identify rows a newer identify of the same entity supersedes: deleted unsent. */
  superseded: ClaimedRow[];
  /** Rows that are not sent but dead-lettered: [row, reason, attempts made]. */
  unsendable: [ClaimedRow, string, number][];
  /** Rows to send, with the event that goes on the wire. */
  sendable: [ClaimedRow, WireEvent][];
}

/** The event a stored row sends, once `checkStoredEvent` passed: a row corrupted in the table is dead-lettered, not sent. */
function toWire(row: ClaimedRow): WireEvent {
  checkStoredEvent(row);
  return { uuid: row.uuid, event: row.event, distinctId: row.distinct_id, properties: row.properties, groups: row.groups, timestamp: row.timestamp };
}

/** Sorts a claimed batch (`maxAgeMs`: the maximum age, named in an expired row's reason). */
export function triage(rows: readonly ClaimedRow[], maxAgeMs: number): Triage {
  const sorted: Triage = { superseded: rows.filter((row) => row.superseded), unsendable: [], sendable: [] };
  for (const row of rows) {
    if (row.superseded) continue;
    if (row.expired) {
      sorted.unsendable.push([row, `older than the maximum age (${describeAge(maxAgeMs)}, --max-age) when it was claimed: not sent`, row.attempts]);
      continue;
    }
    try {
      sorted.sendable.push([row, toWire(row)]);
    } catch (error) {
      if (!(error instanceof OutboxError)) throw error;
      sorted.unsendable.push([row, `invalid stored event, not sent: ${error.message}`, row.attempts]);
    }
  }
  return sorted;
}

function describeAge(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1_000, 'second'],
  ];
  for (const [size, name] of units) if (ms >= size && ms % size === 0) return `${ms / size} ${name}${ms / size === 1 ? '' : 's'}`;
  return `${ms} ms`;
}
