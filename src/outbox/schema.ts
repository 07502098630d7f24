/**
 * The outbox tables as plain drizzle declarations: import them to join against the outbox from your own
 * drizzle code. Everything lives in its own Postgres schema (default `posthog_outbox`) so it never collides
 * with application tables; `outboxSchema(name)` builds the same tables in another schema.
 */
import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, jsonb, type PgSchema, pgSchema, primaryKey, smallint, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import type { ProfileFields } from '../record/event.ts';

export { DEFAULT_SCHEMA };

/** Columns shared by the outbox and the dead-letter table: the event as it will be sent, and whom it touched. */
function eventColumns() {
  return {
    /** UUIDv7 assigned at write time; sent to PostHog as the event uuid so resends deduplicate. */
    uuid: uuid('uuid').primaryKey(),
    event: text('event').notNull(),
    distinctId: text('distinct_id').notNull(),
    /** The event's properties as sent (includes `$groups` for attributed events). */
    properties: jsonb('properties').$type<Record<string, unknown>>().notNull(),
    groups: jsonb('groups').$type<Record<string, string>>().notNull(),
    /** When the event happened; sent as the event timestamp. */
    timestamp: timestamp('timestamp', { withTimezone: true, mode: 'date' }).notNull(),
    userId: text('user_id'),
    userProfile: jsonb('user_profile').$type<ProfileFields>(),
    automationId: text('automation_id'),
    automationProfile: jsonb('automation_profile').$type<ProfileFields>(),
    organizationId: text('organization_id'),
    organizationProfile: jsonb('organization_profile').$type<ProfileFields>(),
    /** Delivery attempts made so far (a row being sent counts its attempt once the attempt is settled). */
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  };
}

/**
 * Events waiting to be delivered, one row each, every value in the type the worker settles it as (jsonb,
 * timestamptz): PostgreSQL refuses at `record()` whatever it could not settle later.
 */
function outboxTable(schema: PgSchema) {
  return schema.table(
    'outbox',
    {
      ...eventColumns(),
      /**
       * When the row may next be claimed: when it was written, then after each failed attempt the backoff
       * time. A worker holds the rows it is sending with a row lock in its transaction, not by writing them.
       * Only rows that have failed (`attempts` > 0) are in its index, so the handler's insert adds no entry
       * to it: rows never tried are claimed in primary-key (UUIDv7: write) order.
       */
      nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
      /**
       * When PostHog last rejected this event on its own (400/413/422 pinned on it by bisection) while no other
       * event of its batch was accepted: such a rejection cannot be told apart from a target that rejects
       * everything, so the event is kept and retried. It is dead-lettered once PostHog has accepted other
       * events since this time. Null for events never rejected that way.
       */
      rejectedAt: timestamp('rejected_at', { withTimezone: true, mode: 'date' }),
      /**
       * On `$identify` / `$groupidentify` rows written by the worker: the entity they identify (`user`,
       * `automation` or `organization`, and its id) and the version of its profile in `identities` they
       * carry. A row whose version is older than the entity's current one is superseded: deleted unsent.
       */
      identityKind: text('identity_kind'),
      identityId: text('identity_id'),
      identityVersion: bigint('identity_version', { mode: 'number' }),
    },
    (t) => [index('outbox_retry_idx').on(t.nextAttemptAt).where(sql`${t.attempts} > 0`)],
  );
}

/** Events given up on, with the reason. */
function deadLettersTable(schema: PgSchema) {
  return schema.table(
    'dead_letters',
    {
      ...eventColumns(),
      /** Why the row was given up on: PostHog's answer to the event, or the last delivery error. */
      reason: text('reason').notNull(),
      diedAt: timestamp('died_at', { withTimezone: true, mode: 'date' }).notNull().default(sql`now()`),
    },
    (t) => [index('dead_letters_died_at_idx').on(t.diedAt)],
  );
}

/**
 * Progress of `posthog-outbox backfill-profiles`, one row per entity kind: where the current pass is, so
 * an interrupted backfill resumes after the last page it enqueued instead of starting over.
 */
function backfillsTable(schema: PgSchema) {
  return schema.table('backfills', {
    /** `users`, `automations` or `organizations`. */
    entity: text('entity').primaryKey(),
    /** Hash of the query the pass pages through; a pass is only resumed with the same query. */
    queryHash: text('query_hash').notNull(),
    /** The last id enqueued (keyset position, as text); null before the first page. */
    lastId: text('last_id'),
    /** Profiles enqueued by this pass so far. */
    enqueued: integer('enqueued').notNull().default(0),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** Set when the pass reached the end; the next backfill starts a new pass. */
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
  });
}

/**
 * What PostHog was last told about each user, automation persona and organization: the merged profile
 * fields last enqueued as an identify, and when. The worker identifies an entity again only when it is
 * new, when a known field changed, or when this is older than the refresh interval.
 */
function identitiesTable(schema: PgSchema) {
  return schema.table(
    'identities',
    {
      /** `user`, `automation` or `organization`. */
      kind: text('kind').notNull(),
      entityId: text('entity_id').notNull(),
      /** The profile fields last enqueued (newest non-null value of each). */
      fields: jsonb('fields').$type<ProfileFields>().notNull(),
      /** Timestamp of the newest event whose fields were merged in (an older event never overwrites a newer one). */
      eventAt: timestamp('event_at', { withTimezone: true, mode: 'date' }).notNull(),
      /** When the last identify for this entity was enqueued. */
      sentAt: timestamp('sent_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
      /** Bumped at each identify enqueued; identify rows carry it (`outbox.identity_version`). */
      version: bigint('version', { mode: 'number' }).notNull().default(1),
    },
    (t) => [primaryKey({ columns: [t.kind, t.entityId] })],
  );
}

/**
 * What the workers last learned about the PostHog target, one row: since when it has been failing (every
 * request refused, unreachable, not PostHog, or rejecting every event) and why; both null while it works.
 * Written by workers when the target's state changes; read by `posthog-outbox status`.
 */
function targetHealthTable(schema: PgSchema) {
  return schema.table(
    'target_health',
    {
      id: smallint('id').primaryKey().default(1),
      failingSince: timestamp('failing_since', { withTimezone: true, mode: 'date' }),
      reason: text('reason'),
      /** Since when every drain pass of a worker has failed on the database (or anything but PostHog), and why. */
      drainFailingSince: timestamp('drain_failing_since', { withTimezone: true, mode: 'date' }),
      drainError: text('drain_error'),
      updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    },
    (t) => [check('target_health_one_row', sql`${t.id} = 1`)],
  );
}

function tables(schemaName: string) {
  const schema = pgSchema(schemaName);
  return {
    schema,
    outbox: outboxTable(schema),
    deadLetters: deadLettersTable(schema),
    backfills: backfillsTable(schema),
    identities: identitiesTable(schema),
    targetHealth: targetHealthTable(schema),
  };
}

export type OutboxTables = ReturnType<typeof tables>;

const cache = new Map<string, OutboxTables>();

/** The outbox tables in the Postgres schema `name` (cached per name). */
export function outboxSchema(name: string = DEFAULT_SCHEMA): OutboxTables {
  let found = cache.get(name);
  if (!found) {
    found = tables(name);
    cache.set(name, found);
  }
  return found;
}

const defaults = outboxSchema(DEFAULT_SCHEMA);
export const posthogOutbox = defaults.schema;
/** Events waiting to be delivered (default schema). */
export const outbox = defaults.outbox;
/** Events given up on, with the reason (default schema). */
export const deadLetters = defaults.deadLetters;
/** Progress of profile backfills (default schema). */
export const backfills = defaults.backfills;
/** What PostHog was last told about each entity (default schema). */
export const identities = defaults.identities;
/** The PostHog target's health as the workers last saw it (default schema). */
export const targetHealth = defaults.targetHealth;
