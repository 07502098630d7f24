/**
 * A claimed batch's events (packs opened), and which of them can go to PostHog: an identify
 * superseded by a newer one is deleted unsent; a row older than the maximum age or stored corrupt is
 * dead-lettered unsent; the others are sent as they were recorded. Pure.
 */
import { OutboxError } from '../src/errors.ts';
import { checkStoredEvent } from '../src/outbox/validate.ts';
import type { WireEvent } from './sender.ts';

/** A claimed event, as the worker sends and settles it: a row of its own, or one of a pack's events. */
export interface ClaimedRow {
  uuid: string;
  event: string;
  distinct_id: string;
  properties: Record<string, unknown>;
  groups: Record<string, string>;
  timestamp: Date;
  attempts: number;
  rejected_at: Date | null;
  /** The entities its event touched (their profile snapshots stay in the database). */
  user_id: string | null;
  automation_id: string | null;
  organization_id: string | null;
  /** Older than the maximum age: dead-lettered, not sent. */
  expired: boolean;
  /** An identify row whose entity was identified again since: deleted, not sent. */
  superseded: boolean;
  /** The pack it came in, or null for a row of its own (`openPacks`). */
  pack: Pack | null;
  /**
   * The event as its pack stores it (profile snapshots included: worker/run-identities.ts compares them), or null
   * for a row of its own, whose snapshots the claim does not read.
   */
  source: Readonly<Record<string, unknown>> | null;
}

/** The pack a claimed event came in (several events of one `record()` call stored as one row). */
export interface Pack {
  /** The pack row's uuid (not an event's). */
  uuid: string;
  /** Its events, as `unpack` writes them back as rows of their own (JSON objects keyed by the event columns). */
  events: Record<string, unknown>[];
  /**
   * Every event stored as `record()` writes it (an object with a valid uuid and an ISO timestamp): only such a
   * pack is deleted whole once delivered (the statement reads its events typed); another is unpacked first.
   */
  clean: boolean;
  /** Unpacked in this batch's transaction: its events are rows of their own now (worker/ledger.ts). */
  unpacked: boolean;
}

/** What the claim returns: a row of one event, or a pack (`events` set, the event columns null). */
export type StoredRow = Omit<ClaimedRow, 'pack' | 'source'> & { events: unknown };

/** Events a claimed row holds: one, or a pack's (a pack stored as no array holds one). */
export function eventsIn(row: StoredRow): number {
  return Array.isArray(row.events) ? row.events.length : 1;
}

/**
 * The first of the claimed rows that hold at most `batchSize` events together (at least one row: a pack is
 * never split), and the events all of them hold. The others are left untouched: free when the claim commits.
 */
export function takeBatch<R extends StoredRow>(rows: readonly R[], batchSize: number): { batch: R[]; claimedEvents: number } {
  let claimedEvents = 0;
  let taken = 0;
  let batchEvents = 0;
  let open = true;
  for (const row of rows) {
    const size = eventsIn(row);
    claimedEvents += size;
    if (open && (taken === 0 || batchEvents + size <= batchSize)) {
      taken++;
      batchEvents += size;
    } else {
      open = false;
    }
  }
  return { batch: rows.slice(0, taken), claimedEvents };
}

/** A timestamp as `Date.prototype.toISOString()` writes it (what `record()` stores). */
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Before every uuid: where a drain run's first claim starts among rows never tried. */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** What one claim saw, for `nextClaimStart`. */
export interface ClaimSeen {
  /** Rows the claim asked for (its `LIMIT`). */
  limit: number;
  /** The rows it returned: rows never tried first, in uuid order, then retries. */
  rows: readonly StoredRow[];
  /** The rows taken into the batch (the first of `rows`; the others are given back at the commit). */
  batch: readonly StoredRow[];
  /** The greatest uuid in the outbox just before the claim (`beginClaim`), null when it was empty. */
  newest: string | null;
}

/**
 * Where the run's next claim starts its scan of rows never tried (claimBatch's `$3`), after `claim`. Past the
 * last row never tried that it took into the batch; or, when its scan reached the end (fewer such rows than it
 * asked for) and none of them was given back, past `newest`: whatever is left before it was skipped because
 * another lane holds it, or failed (its retry is read from the retry index), so the next claim need not walk
 * it again. After an outage the failed rows are the oldest, ahead of every row never tried; without this,
 * every claim of a recovering run would walk all of them. Never moves back. Pure.
 */
export function nextClaimStart(current: string, claim: ClaimSeen): string {
  const untried = claim.rows.filter((row) => row.attempts === 0).length;
  const taken = claim.batch.filter((row) => row.attempts === 0);
  let next = taken.at(-1)?.uuid ?? current;
  if (untried < claim.limit && taken.length === untried && claim.newest !== null && claim.newest > next) next = claim.newest;
  return next > current ? next : current;
}

/**
 * The events of a claim, packs opened: each event of a pack shares the pack's delivery history (attempts,
 * rejection, due time, age). An event stored corrupt in a pack (not an object, no valid uuid or timestamp)
 * still becomes one, with a fresh uuid if it has none, so that it is dead-lettered by `triage` like any
 * corrupt row; `newUuid` makes that uuid.
 */
export function openPacks(rows: readonly StoredRow[], newUuid: () => string): ClaimedRow[] {
  const events: ClaimedRow[] = [];
  for (const row of rows) {
    if (row.events === null || row.events === undefined) {
      events.push({ ...row, pack: null, source: null });
      continue;
    }
    const pack: Pack = { uuid: row.uuid, events: [], clean: Array.isArray(row.events), unpacked: false };
    for (const stored of Array.isArray(row.events) ? row.events : [row.events]) {
      const object = stored !== null && typeof stored === 'object' && !Array.isArray(stored);
      const e: Record<string, unknown> = object ? stored : { properties: stored };
      const time = typeof e.timestamp === 'string' ? new Date(e.timestamp) : undefined;
      const timestamp = time && !Number.isNaN(time.getTime()) ? time : null;
      const uuid = typeof e.uuid === 'string' && UUID.test(e.uuid) ? e.uuid : newUuid();
      // Clean: as record() wrote it. The day compared as well, since Date rolls an impossible one (02-30) over.
      const iso = timestamp !== null && ISO.test(e.timestamp as string) && timestamp.getUTCDate() === Number((e.timestamp as string).slice(8, 10));
      if (object && uuid === e.uuid && iso) {
        pack.events.push(e);
      } else {
        pack.clean = false;
        pack.events.push({ ...e, uuid, timestamp: timestamp?.toISOString() ?? null });
      }
      events.push({
        uuid,
        event: e.event as string,
        distinct_id: e.distinct_id as string,
        properties: e.properties as Record<string, unknown>,
        groups: e.groups as Record<string, string>,
        timestamp: timestamp as Date,
        attempts: row.attempts,
        rejected_at: row.rejected_at,
        user_id: idOf(e.user_id),
        automation_id: idOf(e.automation_id),
        organization_id: idOf(e.organization_id),
        expired: row.expired,
        superseded: false,
        pack,
        source: e,
      });
    }
  }
  return events;
}

function idOf(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
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
