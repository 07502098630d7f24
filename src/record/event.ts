/**
 * The unit the outbox stores: one PostHog event, fully attributed, plus the profile snapshots of the
 * entities it touched (used by the worker to re-identify them once per run).
 * Built by the attribution module (`src/attribution`), written by `record()`.
 */

/** The `$set` / `$group_set` fields of one entity, only the known ones (never `null`). */
export type ProfileFields = Record<string, string | number | boolean>;

export interface ProfileSnapshots {
  /** A user person: distinct id = `id`; `$identify` with `$set: fields`. */
  user?: { id: string; fields: ProfileFields };
  /** An automation persona: distinct id = `automation_<id>`; `$identify` with `$set: fields`. */
  automation?: { id: string; fields: ProfileFields };
  /** An organization group: `$groupidentify` with group type `organization`, key = `id`. */
  organization?: { id: string; fields: ProfileFields };
}

export interface OutboxEvent {
  /** PostHog event name. */
  event: string;
  /** PostHog distinct id (at most 200 characters). */
  distinctId: string;
  /** Event properties, including `$groups` for attributed events. JSON-serialisable. */
  properties: Record<string, unknown>;
  /** Group type -> group key, e.g. `{ organization: "org_1" }`. */
  groups: Record<string, string>;
  /** When the event happened. `record()` uses the write time when absent. */
  timestamp?: Date;
  /** Who the event touched, with what we know of them; the worker re-identifies each once per run. */
  profiles: ProfileSnapshots;
}
