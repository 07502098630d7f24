/**
 * Re-identification: from the events a run delivered, one `$identify` per user and automation persona and
 * one `$groupidentify` per organization, carrying the newest known value of each profile field. Pure.
 */
import { identifyEvent } from '../src/attribution/profiles.ts';
import type { OutboxEvent, ProfileFields } from '../src/event.ts';

/** What a delivered row tells about the entities it touched. */
export interface Touch {
  timestamp: Date;
  user?: { id: string; fields: ProfileFields } | null;
  automation?: { id: string; fields: ProfileFields } | null;
  organization?: { id: string; fields: ProfileFields } | null;
}

interface Known {
  /** field -> [value, timestamp of the event it came from] */
  fields: Map<string, [string | number | boolean, number]>;
}

const KINDS = ['user', 'automation', 'organization'] as const;
type Kind = (typeof KINDS)[number];

/** Collects the profiles touched during a run: each entity once, each field at its newest value. */
export class TouchedProfiles {
  private readonly entities = new Map<Kind, Map<string, Known>>(KINDS.map((k) => [k, new Map()]));

  add(touch: Touch): void {
    const at = touch.timestamp.getTime();
    for (const kind of KINDS) {
      const snapshot = touch[kind];
      if (!snapshot) continue;
      const byId = this.entities.get(kind)!;
      let known = byId.get(snapshot.id);
      if (!known) byId.set(snapshot.id, (known = { fields: new Map() }));
      for (const [key, value] of Object.entries(snapshot.fields)) {
        if (value === null || value === undefined) continue;
        const current = known.fields.get(key);
        if (!current || current[1] <= at) known.fields.set(key, [value, at]);
      }
    }
  }

  get size(): number {
    let n = 0;
    for (const byId of this.entities.values()) n += byId.size;
    return n;
  }

  /**
   * The identify events to send: `$identify` (distinct id = user id, or `automation_<id>`) with `$set`, and
   * `$groupidentify` for organizations with `$group_set`. Entities with no known field get none.
   */
  toEvents(now: Date = new Date()): OutboxEvent[] {
    const events: OutboxEvent[] = [];
    for (const kind of KINDS) {
      for (const [id, known] of this.entities.get(kind)!) {
        const set: ProfileFields = Object.fromEntries([...known.fields].map(([key, [value]]) => [key, value]));
        const event = identifyEvent(kind, id, set, now); // null when no field is known
        if (event) events.push(event);
      }
    }
    return events;
  }
}
