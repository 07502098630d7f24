/**
 * Profiles (docs/attribution.md, "People and groups"): which fields each entity's profile has, and
 * the `$identify` / `$groupidentify` event that sets them. Used by the run context (snapshots on every
 * event), the worker (re-identify once per run) and `backfill-profiles`. Pure.
 */
import type { OutboxEvent, ProfileFields } from '../record/event.ts';
import { checkTimestamp, MAX_ID_LENGTH } from '../record/limits.ts';

export type ProfileKind = 'user' | 'automation' | 'organization';

/** Only the known fields: a missing value is left out, never sent as null, so it cannot wipe one PostHog has. */
function known(fields: Record<string, string | number | boolean | null | undefined>): ProfileFields {
  const out: ProfileFields = {};
  for (const [key, value] of Object.entries(fields)) if (value !== null && value !== undefined && value !== '') out[key] = value;
  return out;
}

export function userFields(user: { email?: string | null; name?: string | null }): ProfileFields {
  return known({ email: user.email, name: user.name });
}

export function organizationFields(org: { name?: string | null; slug?: string | null }): ProfileFields {
  return known({ name: org.name, slug: org.slug });
}

/** An automation persona; `name` falls back to `Automation <id>`. */
export function automationFields(automation: { id: string; name?: string | null; ownerUserId?: string | null; organizationId?: string | null }): ProfileFields {
  return known({
    name: automation.name || `Automation ${automation.id}`,
    is_automation: true,
    automation_id: automation.id,
    owner_user_id: automation.ownerUserId,
    organization_id: automation.organizationId,
  });
}

/** The distinct id of a person profile: the user id, or `automation_<id>` for an automation persona. */
export function personDistinctId(kind: 'user' | 'automation', id: string): string {
  return kind === 'automation' ? `automation_${id}` : id;
}

/** `text` cut to at most `max` UTF-16 units, never between the two halves of a surrogate pair (jsonb refuses a lone one). */
function cutWhole(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/**
 * The event that sets a profile: `$identify` with `$set` for users and automation personas,
 * `$groupidentify` (group type `organization`) with `$group_set` for organizations. `null` when no field
 * is known: there is nothing to set. A `timestamp` must be a valid Date in 1970..9999 UTC (src/record/limits.ts
 * `checkTimestamp`).
 */
export function identifyEvent(kind: ProfileKind, id: string, fields: ProfileFields, timestamp?: Date): OutboxEvent | null {
  if (timestamp !== undefined) checkTimestamp(timestamp, 'timestamp');
  if (Object.keys(fields).length === 0) return null;
  if (kind === 'organization') {
    return {
      event: '$groupidentify',
      // PostHog ignores a group-identify's distinct id but caps its length at 200; an id ending in an emoji is
      // not cut in the middle of it (the worker would queue an identify record() refuses).
      distinctId: cutWhole(`$organization_${id}`, MAX_ID_LENGTH),
      properties: { $group_type: 'organization', $group_key: id, $group_set: fields },
      groups: {},
      ...(timestamp ? { timestamp } : {}),
      profiles: {},
    };
  }
  return {
    event: '$identify',
    distinctId: personDistinctId(kind, id),
    properties: { $set: fields },
    groups: {},
    ...(timestamp ? { timestamp } : {}),
    profiles: {},
  };
}

/** The columns a backfill query may return for each kind (`id` is required). */
export const PROFILE_COLUMNS: Record<ProfileKind, readonly string[]> = {
  user: ['id', 'email', 'name'],
  organization: ['id', 'name', 'slug'],
  automation: ['id', 'name', 'owner_user_id', 'organization_id'],
};

function text(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return null;
}

/**
 * A profile from a row of the application's own table (backfill). Throws `Error` naming the column when
 * the row has a column the kind does not have (a typo such as `mail` would otherwise be silently ignored).
 */
export function profileFromRow(kind: ProfileKind, row: Record<string, unknown>): { id: string; fields: ProfileFields } {
  const extra = Object.keys(row).filter((column) => !PROFILE_COLUMNS[kind].includes(column));
  if (extra.length > 0)
    throw new Error(`the ${kind} query returns ${extra.map((c) => `"${c}"`).join(', ')}; it may return only ${PROFILE_COLUMNS[kind].join(', ')}`);
  const id = text(row.id) ?? '';
  if (kind === 'user') return { id, fields: userFields({ email: text(row.email), name: text(row.name) }) };
  if (kind === 'organization') return { id, fields: organizationFields({ name: text(row.name), slug: text(row.slug) }) };
  return { id, fields: automationFields({ id, name: text(row.name), ownerUserId: text(row.owner_user_id), organizationId: text(row.organization_id) }) };
}
