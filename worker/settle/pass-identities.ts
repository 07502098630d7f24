/**
 * A drain pass's memory of the entities its delivered events touched, so that re-identification only reads the
 * delivered rows that can change something. Re-identification (`deleteDeliveredAndRemember` in
 * src/identify/identities.sql.ts) reads the profile snapshots of the rows it is given, merges them per entity and asks
 * the `identities` table; reading a pack's snapshots means parsing the pack in PostgreSQL, so a batch whose
 * entities are all known to the pass is simply deleted:
 * - an entity the pass identified is left out for the rest of the pass (at most one identify per entity per pass);
 * - an entity the pass looked at is not looked at again while its events carry the newest snapshot looked at:
 *   merging a snapshot equal to the newest one changes nothing. An event with another snapshot (a changed
 *   profile, or one the worker could not read: a row of one event, whose snapshots stay in the database) is
 *   looked at, with every row of the batch that touches the same entity, so the newest still decides.
 * Pure: the worker's ledger (worker/settle/ledger.ts) runs the statement.
 */
import type { ProfileKind } from '../../src/attribution/profiles.ts';
import { entityKey } from '../../src/identify/events.ts';

/** An entity a delivered event touched, with the profile snapshot it carries (`undefined`: not read by the worker). */
export interface Touch {
  kind: ProfileKind;
  id: string;
  fields: Readonly<Record<string, unknown>> | undefined;
}

/** A delivered event, as re-identification sees it: its uuid and time (the newest wins; ties: the greater uuid). */
export interface DeliveredEvent {
  uuid: string;
  at: number;
  touches: readonly Touch[];
}

/** The newest snapshot of an entity the pass looked at. */
interface Looked {
  fields: Readonly<Record<string, unknown>> | undefined;
  at: number;
  uuid: string;
}

/** Two snapshots with the same fields, each a scalar (what `record()` stores). Anything else is not known to be equal. */
export function sameFields(a: Readonly<Record<string, unknown>> | undefined, b: Readonly<Record<string, unknown>> | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  if (a === b) return true;
  let count = 0;
  for (const key in a) {
    const value = a[key];
    if (value !== null && typeof value === 'object') return false;
    if (!Object.hasOwn(b, key) || b[key] !== value) return false;
    count++;
  }
  for (const key in b) if (Object.hasOwn(b, key)) count--;
  return count === 0;
}

function isEmpty(fields: Readonly<Record<string, unknown>> | undefined): boolean {
  if (fields === undefined) return false;
  for (const _ in fields) return false;
  return true;
}

function newer(a: { at: number; uuid: string }, b: { at: number; uuid: string }): boolean {
  return a.at !== b.at ? a.at > b.at : a.uuid.toLowerCase() > b.uuid.toLowerCase();
}

/**
 * The entities a pass remembers the snapshot of, at most: a pass (10 s by default, `maxPassMs`) over a backlog of
 * many distinct users keeps its memory bounded; an entity beyond it is simply read again each time.
 */
export const LOOKED_LIMIT = 50_000;

/** The entry of `kind` in `map`, made by `make` the first time. */
function ofKind<T>(map: Map<ProfileKind, T>, kind: ProfileKind, make: () => T): T {
  let entry = map.get(kind);
  if (entry === undefined) {
    entry = make();
    map.set(kind, entry);
  }
  return entry;
}

export class PassIdentities {
  /** Per kind, the ids the pass identified; and the newest snapshot it looked at (no `kind:id` strings built per event). */
  private readonly identified = new Map<ProfileKind, Set<string>>();
  private readonly looked = new Map<ProfileKind, Map<string, Looked>>();
  private lookedCount = 0;
  private readonly limit: number;

  constructor(limit = LOOKED_LIMIT) {
    this.limit = limit;
  }

  private identifiedHas(kind: ProfileKind, id: string): boolean {
    return this.identified.get(kind)?.has(id) ?? false;
  }

  /**
   * Nothing to read for this touch: the pass identified the entity, or the snapshot repeats the newest one it
   * looked at. A batch whose every touch is settled is simply deleted (no `DeliveredEvent` built for it).
   */
  settled(kind: ProfileKind, id: string, fields: Readonly<Record<string, unknown>> | undefined): boolean {
    if (this.identifiedHas(kind, id)) return true;
    const looked = this.looked.get(kind)?.get(id);
    // An empty snapshot (an `$ai_*` event names its run's entities without a profile) merges to nothing: once
    // the pass looked at the entity, it cannot change what is sent.
    return looked !== undefined && (isEmpty(fields) || sameFields(looked.fields, fields));
  }

  /**
   * The snapshot the pass remembers for the entity when `fields` repeats it, else `fields`. The worker swaps each
   * claimed event's snapshots for the remembered ones (worker/settle/ledger.ts, `adoptSnapshots`): equal, so nothing
   * changes, but the copies JSON.parse made die at once instead of living (and being copied by the garbage
   * collector) while the batch is out.
   */
  canonical<F extends Readonly<Record<string, unknown>>>(kind: ProfileKind, id: string, fields: F): F {
    const known = this.looked.get(kind)?.get(id)?.fields;
    return sameFields(known, fields) ? (known as F) : fields;
  }

  /**
   * Which of `events` re-identification must read (by index): those touching an entity that is neither
   * identified by the pass nor repeating its newest snapshot looked at, and every other event touching such an
   * entity; and the entities of `events` the pass identified (`kind:id`), which it must leave out.
   */
  toRead(events: readonly DeliveredEvent[]): { read: number[]; exclude: string[] } {
    const unsettled = new Set<string>();
    const exclude = new Set<string>();
    for (const event of events) {
      for (const touch of event.touches) {
        if (this.identifiedHas(touch.kind, touch.id)) exclude.add(entityKey(touch.kind, touch.id));
        else if (!this.settled(touch.kind, touch.id, touch.fields)) unsettled.add(entityKey(touch.kind, touch.id));
      }
    }
    const read: number[] = [];
    if (unsettled.size > 0) {
      events.forEach((event, i) => {
        if (event.touches.some((touch) => unsettled.has(entityKey(touch.kind, touch.id)))) read.push(i);
      });
    }
    return { read, exclude: [...exclude] };
  }

  /** After re-identification read `read` and identified `identified` (`kind:id`): remembers what the pass now knows. */
  learn(read: readonly DeliveredEvent[], identified: Iterable<string>): void {
    for (const key of identified) {
      const colon = key.indexOf(':');
      const kind = key.slice(0, colon) as ProfileKind;
      ofKind(this.identified, kind, () => new Set<string>()).add(key.slice(colon + 1));
    }
    for (const event of read) {
      for (const touch of event.touches) {
        // Identified entities too: their snapshot is never compared again (identified decides), only adopted (`canonical`).
        const looked = ofKind(this.looked, touch.kind, () => new Map<string, Looked>());
        const known = looked.get(touch.id);
        if (known ? !newer(event, known) || isEmpty(touch.fields) : this.lookedCount >= this.limit) continue;
        if (!known) this.lookedCount++;
        looked.set(touch.id, { fields: touch.fields, at: event.at, uuid: event.uuid });
      }
    }
  }
}
