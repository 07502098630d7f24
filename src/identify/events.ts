/**
 * Re-identification, the pure part: for the entities the `identities` memory decides to identify (src/identify/identities.sql.ts
 * `rememberIdentities`: new, changed, or not refreshed for the refresh interval), the `$identify` /
 * `$groupidentify` event that sets their profile. (Which entities a batch's delivered events touched, each
 * field at its newest value, is worked out in SQL from the rows' profile snapshots: `deleteDeliveredAndRemember`.)
 */
import { identifyEvent, type ProfileKind } from '../attribution/profiles.ts';
import type { OutboxEvent, ProfileFields } from '../record/event.ts';

/** An unchanged profile is identified again once its last identify is this old (the worker's and the backfill's default). */
export const DEFAULT_IDENTIFY_REFRESH_MS = 24 * 3_600_000;

/** An entity touched by delivered events: its newest known fields and the newest event's timestamp. */
export interface TouchedEntity {
  kind: ProfileKind;
  id: string;
  fields: ProfileFields;
  /** The newest event that touched it. */
  at: Date;
}

/** `user:u1`: one entity, as a key. */
export function entityKey(kind: ProfileKind, id: string): string {
  return `${kind}:${id}`;
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
