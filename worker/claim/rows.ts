/**
 * A claimed batch's rows, and which of them can go to PostHog: an identify superseded by a newer one is
 * deleted unsent; a row older than the maximum age or stored corrupt is dead-lettered unsent; the others are
 * sent as they were recorded. Pure.
 */
import { OutboxError } from '../../src/errors/errors.ts';
import { checkStoredEvent, isAiEvent, MAX_AI_EVENT_BYTES } from '../../src/record/validate.ts';
import type { WireEvent } from '../send/sender.ts';

/** A claimed row (one event), as the worker sends and settles it. */
export interface ClaimedRow {
  uuid: string;
  event: string;
  distinct_id: string;
  properties: Record<string, unknown>;
  groups: Record<string, string>;
  timestamp: Date;
  attempts: number;
  rejected_at: Date | null;
  /** The entities its event touched, with the profile snapshots it carries (null: none). */
  user_id: string | null;
  user_profile: Record<string, unknown> | null;
  automation_id: string | null;
  automation_profile: Record<string, unknown> | null;
  organization_id: string | null;
  organization_profile: Record<string, unknown> | null;
  /** Older than the maximum age: dead-lettered, not sent. */
  expired: boolean;
  /** An identify row whose entity was identified again since: deleted, not sent. */
  superseded: boolean;
  /** How many rows the claim locked: more than it returned when it stopped at its byte budget. */
  locked: number;
}

/** Before every uuid: where a drain pass's first claim starts among rows never tried. */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** What one claim saw, for `nextClaimStart`. */
export interface ClaimSeen {
  /** Rows the claim asked for (its `LIMIT`). */
  limit: number;
  /** The rows it returned: rows never tried first, in uuid order, then retries. */
  rows: readonly Pick<ClaimedRow, 'uuid' | 'attempts' | 'locked'>[];
  /** The greatest uuid in the outbox just before the claim (`beginClaim`), null when it was empty. */
  newest: string | null;
}

/**
 * Where the pass's next claim starts its scan of rows never tried (claimBatch's `$3`), after `claim`. Past the
 * last row never tried that it returned; or, when its scan reached the end (fewer such rows than it asked for,
 * none held back by the byte budget), past `newest`: whatever is left before it was skipped because another
 * lane holds it, or failed (its retry is read from the retry index), so the next claim need not walk it again.
 * After an outage the failed rows are the oldest, ahead of every row never tried; without this, every claim of
 * a recovering pass would walk all of them. Never moves back. Pure.
 */
export function nextClaimStart(current: string, claim: ClaimSeen): string {
  const untried = claim.rows.filter((row) => row.attempts === 0);
  const cut = claim.rows.length > 0 && claim.rows[0]!.locked > claim.rows.length;
  let next = untried.at(-1)?.uuid ?? current;
  if (!cut && untried.length < claim.limit && claim.newest !== null && claim.newest > next) next = claim.newest;
  return next > current ? next : current;
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
  // posthog-node drops an `$ai_*` event over the AI endpoint's 8 MiB without a request; record() refuses them.
  if (isAiEvent(row.event) && Buffer.byteLength(JSON.stringify(row.properties)) > MAX_AI_EVENT_BYTES) {
    throw new OutboxError('too_large', 'row.properties', `are over the ${MAX_AI_EVENT_BYTES} bytes PostHog's AI endpoint takes per event`);
  }
  return { uuid: row.uuid, event: row.event, distinctId: row.distinct_id, properties: row.properties, groups: row.groups, timestamp: row.timestamp };
}

/** Sorts a claimed batch (`maxAgeMs`: the maximum age, named in an expired row's reason). */
export function triage(rows: readonly ClaimedRow[], maxAgeMs: number): Triage {
  const sorted: Triage = { superseded: rows.filter((row) => row.superseded), unsendable: [], sendable: [] };
  for (const row of rows) {
    if (row.superseded) continue;
    if (row.expired) {
      sorted.unsendable.push([row, `older than the maximum age (${describeAge(maxAgeMs)}) when it was claimed: not sent`, row.attempts]);
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
