/**
 * Checks an event before it is written, so nothing that PostHog would reject, or that the worker could not
 * settle, ever reaches the outbox: every key and string at any depth is one jsonb and text hold (no NUL, no
 * lone surrogate), the timestamp is one timestamptz and PostHog keep, the identify the worker will queue for a
 * profile fits PostHog's limits. A bad event throws `OutboxError` naming the field, before any SQL runs.
 * test/reliability/settle.property.test.ts checks that whatever passes is settled by the worker. Pure: no I/O.
 */
import { OutboxError } from '../errors/errors.ts';
import { personDistinctId } from '../attribution/profiles.ts';
import { checkId, checkKey, checkString, checkTimestamp, describe, isId, isStorable, MAX_ID_LENGTH } from './limits.ts';
import type { OutboxEvent, ProfileFields } from './event.ts';

/**
 * PostHog refuses events over 1 MB on `/batch/` (and Capture V1). The stored event (name, distinct id, properties,
 * groups) must fit in 1,000,000 bytes less an allowance for what posthog-node adds (`$lib`, `$lib_version`, uuid,
 * timestamp...).
 */
export const MAX_EVENT_BYTES = 1_000_000 - 8 * 1024;
/**
 * `$ai_*` events go to PostHog's AI endpoint (`/i/v0/ai/batch/`, worker/send/sender.ts), which takes up to 8 MiB per
 * event (posthog-node's `AI_MAX_EVENT_BYTES`; 413 above): the same allowance kept below it.
 */
export const MAX_AI_EVENT_BYTES = 8 * 1024 * 1024 - 8 * 1024;

/**
 * Whether an event goes to PostHog's AI endpoint: its name starts with `$ai_` (`$ai_generation`, `$ai_span`,
 * `$ai_trace`, `$ai_embedding`...), posthog-node's own rule for the events it routes apart (capture-v1/routing),
 * and the only events that endpoint accepts.
 */
export function isAiEvent(event: string): boolean {
  return event.startsWith('$ai_');
}

/** The most bytes a stored event named `event` may take: the AI endpoint's limit for `$ai_*` events, `/batch/`'s for the others. */
export function maxEventBytes(event: string): number {
  return isAiEvent(event) ? MAX_AI_EVENT_BYTES : MAX_EVENT_BYTES;
}
/** Deeper nesting is refused rather than risking a stack overflow in a parser downstream. */
export const MAX_DEPTH = 64;

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function childField(parent: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

/**
 * Throws unless `value` serialises to JSON that parses back to the same value: finite numbers, well-formed
 * strings, plain objects and arrays (and valid Dates, sent as ISO strings), no cycles, at most MAX_DEPTH
 * deep. `undefined` object values are left out, as JSON.stringify does.
 */
export function checkJson(value: unknown, field: string): void {
  walkJson(value, field, [], []);
}

/** `field` followed by the keys and indexes of `path`, e.g. `events[0].properties.a[2]`. */
function fieldPath(field: string, path: readonly (string | number)[]): string {
  return path.reduce<string>((at, key) => (typeof key === 'number' ? `${at}[${key}]` : childField(at, key)), field);
}

/** The walk behind checkJson; the field path of a value is only spelled out when it is at fault. */
function walkJson(value: unknown, field: string, ancestors: object[], path: (string | number)[]): void {
  switch (typeof value) {
    case 'string':
      if (!isStorable(value)) checkString(value, fieldPath(field, path));
      return;
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new OutboxError('not_serializable', fieldPath(field, path), `${value} is not a JSON number`);
      return;
    case 'object': {
      if (value === null) return;
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new OutboxError('not_serializable', fieldPath(field, path), 'is an invalid Date');
        return;
      }
      if (ancestors.includes(value)) throw new OutboxError('not_serializable', fieldPath(field, path), 'is cyclic (refers to an object that contains it)');
      if (ancestors.length >= MAX_DEPTH) throw new OutboxError('not_serializable', fieldPath(field, path), `is nested deeper than ${MAX_DEPTH} levels`);
      ancestors.push(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          path.push(i);
          if (value[i] === undefined) throw new OutboxError('not_serializable', fieldPath(field, path), 'is undefined (JSON would turn it into null)');
          walkJson(value[i], field, ancestors, path);
          path.pop();
        }
      } else {
        if (!isPlainObject(value)) {
          throw new OutboxError(
            'not_serializable',
            fieldPath(field, path),
            `is ${describe(value)}; only plain objects, arrays and Dates serialise to JSON unchanged`,
          );
        }
        if (typeof (value as { toJSON?: unknown }).toJSON === 'function')
          throw new OutboxError('not_serializable', fieldPath(field, path), 'has a toJSON method; pass the plain value instead');
        for (const key of Object.keys(value)) {
          path.push(key);
          if (!isStorable(key)) checkKey(key, fieldPath(field, path));
          const item = (value as Record<string, unknown>)[key];
          if (item !== undefined) walkJson(item, field, ancestors, path);
          path.pop();
        }
      }
      ancestors.pop();
      return;
    }
    case 'undefined':
      throw new OutboxError('not_serializable', fieldPath(field, path), 'is undefined');
    default:
      throw new OutboxError('not_serializable', fieldPath(field, path), `is ${describe(value)}, which has no JSON form`);
  }
}

function checkObject(value: unknown, field: string): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !isPlainObject(value)) {
    throw new OutboxError('invalid', field, `must be a plain object, got ${describe(value)}`);
  }
}

function checkProfile(profile: unknown, field: string): { id: string; fields: ProfileFields } | undefined {
  if (profile === undefined) return undefined;
  checkObject(profile, field);
  const id = checkId(profile.id, `${field}.id`);
  checkObject(profile.fields, `${field}.fields`);
  for (const [key, value] of Object.entries(profile.fields)) {
    const f = childField(`${field}.fields`, key);
    // The fields become jsonb (the stored snapshot, the `identities` memory) and the identify's `$set`.
    checkKey(key, f);
    if (typeof value === 'string') checkString(value, f);
    else if (typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) continue;
    else throw new OutboxError('invalid', f, `must be a string, finite number or boolean, got ${describe(value)}`);
  }
  return { id, fields: profile.fields as ProfileFields };
}

/**
 * The worker identifies an automation persona as `automation_<id>` (src/attribution/profiles.ts): that distinct
 * id must fit PostHog's 200 characters, or the identify the worker queues when it settles the event would be
 * refused inside its batch transaction (as `attribution()` refuses such a context).
 */
function checkAutomationId(id: string, field: string): void {
  const distinctId = personDistinctId('automation', id);
  if (distinctId.length > MAX_ID_LENGTH) {
    throw new OutboxError('too_long', field, `is ${id.length} characters; the persona's distinct id "automation_<id>" must fit PostHog's ${MAX_ID_LENGTH}`);
  }
}

/** Validates one event for `record()`; `field` prefixes the error's field (e.g. `events[3]`). */
export function checkEvent(event: unknown, field: string): OutboxEvent {
  checkObject(event, field);
  const fields = fieldsUnder(field);
  checkSendable(event.event, event.distinctId, event.properties, event.groups, fields);
  // Within the range PostgreSQL's timestamptz and PostHog both keep (src/record/limits.ts, MIN_TIMESTAMP_MS).
  if (event.timestamp !== undefined) checkTimestamp(event.timestamp, fields.timestamp);
  checkObject(event.profiles, `${field}.profiles`);
  checkProfile(event.profiles.user, `${field}.profiles.user`);
  const automation = checkProfile(event.profiles.automation, `${field}.profiles.automation`);
  if (automation) checkAutomationId(automation.id, `${field}.profiles.automation.id`);
  checkProfile(event.profiles.organization, `${field}.profiles.organization`);
  checkJson(event.properties, `${field}.properties`);
  return event as unknown as OutboxEvent;
}

/** The error field names of what is sent of an event, under `field`. */
interface SendableFields {
  event: string;
  distinctId: string;
  properties: string;
  groups: string;
  timestamp: string;
}

function fieldsUnder(field: string): SendableFields {
  return {
    event: `${field}.event`,
    distinctId: `${field}.distinctId`,
    properties: `${field}.properties`,
    groups: `${field}.groups`,
    timestamp: `${field}.timestamp`,
  };
}

/** What goes to PostHog of an event (but its time), checked alike when it is recorded and before a stored row is sent. */
function checkSendable(event: unknown, distinctId: unknown, properties: unknown, groups: unknown, fields: SendableFields): void {
  checkId(event, fields.event);
  checkId(distinctId, fields.distinctId);
  checkObject(properties, fields.properties);
  checkObject(groups, fields.groups);
  // The field is only spelled out for a group at fault: the worker checks every row it sends. The group type
  // (the key) is checked as a string is: jsonb cannot hold it otherwise.
  for (const type in groups) {
    if (!isStorable(type)) checkKey(type, childField(fields.groups, type));
    if (!isId(groups[type])) checkId(groups[type], childField(fields.groups, type));
  }
}

function checkDate(value: unknown, field: string): void {
  if (!(value instanceof Date && !Number.isNaN(value.getTime()))) throw new OutboxError('invalid', field, 'must be a valid Date');
}

/** A stored row's fields are named under `row` (constant: nothing is allocated for a sound row). */
const ROW_FIELDS = fieldsUnder('row');

/**
 * What `record()` checked of an event that its stored row can still break (a row edited or corrupted in the
 * table), checked by the worker before the event is sent: errors name the field under `row`. Its properties
 * come out of a jsonb column, so they are JSON by construction; the profile snapshots are not sent.
 */
export function checkStoredEvent(row: { event: unknown; distinct_id: unknown; properties: unknown; groups: unknown; timestamp: unknown }): void {
  checkSendable(row.event, row.distinct_id, row.properties, row.groups, ROW_FIELDS);
  checkDate(row.timestamp, ROW_FIELDS.timestamp);
}

/**
 * Throws when the stored form of an event named `event` (`json`, its outbox row as JSON) is over its limit
 * (`maxEventBytes`: MAX_AI_EVENT_BYTES for `$ai_*` events, MAX_EVENT_BYTES for the others).
 */
export function checkSize(json: string, field: string, event: string): void {
  // Cheap upper bound first: a UTF-16 code unit is at most 3 UTF-8 bytes.
  if (json.length * 3 <= MAX_EVENT_BYTES) return;
  const limit = maxEventBytes(event);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes <= limit) return;
  const applies = isAiEvent(event)
    ? `PostHog's AI endpoint accepts at most ${limit} per $ai_* event`
    : `PostHog accepts at most ${limit} per event (only $ai_* events may be larger, up to ${MAX_AI_EVENT_BYTES}, through its AI endpoint)`;
  throw new OutboxError('too_large', `${field}.properties`, `the event is ${bytes} bytes; ${applies}`);
}
