/**
 * Re-identification, the pure part: which users, automation personas and organizations a batch of delivered
 * events touched, each with the newest known value of each profile field (never a null); and, for the
 * entities the `identities` memory decides to identify (src/sql.ts `rememberIdentities`: new, changed, or
 * not refreshed for the refresh interval), the `$identify` / `$groupidentify` event that sets their profile.
 */
import { identifyEvent, type ProfileKind } from '../src/attribution/profiles.ts';
import type { OutboxEvent, ProfileFields } from '../src/event.ts';

/** What a delivered row tells about the entities it touched. */
export interface Touch {
  timestamp: Date;
  user?: { id: string; fields: ProfileFields } | null;
  automation?: { id: string; fields: ProfileFields } | null;
  organization?: { id: string; fields: ProfileFields } | null;
}

/** An entity touched by delivered events: its newest known fields and the newest event's timestamp. */
export interface TouchedEntity {
  kind: ProfileKind;
  id: string;
  fields: ProfileFields;
  /** The newest event that touched it. */
  at: Date;
}

interface Known {
  /** field -> [value, timestamp of the event it came from] */
  fields: Map<string, [string | number | boolean, number]>;
  at: number;
}

export const PROFILE_KINDS = ['user', 'automation', 'organization'] as const satisfies readonly ProfileKind[];

/** `user:u1`: one entity, as a key. */
export function entityKey(kind: ProfileKind, id: string): string {
  return `${kind}:${id}`;
}

/** Collects the profiles touched by delivered events: each entity once, each field at its newest value. */
export class TouchedProfiles {
  private readonly byKind = new Map<ProfileKind, Map<string, Known>>(PROFILE_KINDS.map((k) => [k, new Map()]));

  add(touch: Touch): void {
    const at = touch.timestamp.getTime();
    for (const kind of PROFILE_KINDS) {
      const snapshot = touch[kind];
      if (!snapshot) continue;
      const byId = this.byKind.get(kind)!;
      let known = byId.get(snapshot.id);
      if (!known) byId.set(snapshot.id, (known = { fields: new Map(), at }));
      known.at = Math.max(known.at, at);
      for (const [key, value] of Object.entries(snapshot.fields)) {
        if (value === null || value === undefined) continue;
        const current = known.fields.get(key);
        if (!current || current[1] <= at) known.fields.set(key, [value, at]);
      }
    }
  }

  get size(): number {
    let n = 0;
    for (const byId of this.byKind.values()) n += byId.size;
    return n;
  }

  /** Every touched entity (those with no known field too: a known profile is still refreshed), users first. */
  entities(): TouchedEntity[] {
    const out: TouchedEntity[] = [];
    for (const kind of PROFILE_KINDS) {
      for (const [id, known] of this.byKind.get(kind)!) {
        out.push({ kind, id, fields: Object.fromEntries([...known.fields].map(([key, [value]]) => [key, value])), at: new Date(known.at) });
      }
    }
    return out;
  }
}

/** An entity the memory decided to identify: its merged fields and the profile version the identify carries. */
export interface Identification {
  kind: ProfileKind;
  id: string;
  fields: ProfileFields;
  version: number;
}

/**
 * The identify event for each entity to identify (`$identify` with `$set`, or `$groupidentify` with
 * `$group_set`), with the entity and version it carries; none for an entity with no known field.
 */
export function identifyEvents(identifications: readonly Identification[], now: Date = new Date()): { event: OutboxEvent; identity: Identification }[] {
  return identifications.flatMap((identity) => {
    const event = identifyEvent(identity.kind, identity.id, identity.fields, now); // null when no field is known
    return event ? [{ event, identity }] : [];
  });
}
