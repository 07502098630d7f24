/**
 * Delivery as PostgreSQL counts it. The outbox keeps no history of what it delivered (a delivered row is
 * deleted; each worker counts its own runs in its `/metrics`), but PostgreSQL's cumulative statistics count
 * every row inserted, updated and deleted in each table, by every session. Two readings some time apart say
 * what happened between them, whichever workers did it: the operator console samples them (src/console/sampler.ts).
 */
import type postgres from 'postgres';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import { query } from '../sql/statement.ts';
import * as q from './inspect.sql.ts';

/**
 * One reading. The counts are cumulative since PostgreSQL's statistics were last reset (they go down after a
 * reset or a crash); each session adds its own within seconds of its transaction (PostgreSQL flushes them at
 * most once a second, and an idle session within ~10 s), those of transactions rolled back included.
 */
export interface DeliveryCounters {
  /** The database's time of the reading. */
  at: string;
  /**
   * Rows deleted from the outbox: delivered (events and identify rows), dead-lettered (moved), identify rows
   * superseded by a newer one, and rows `forget` erased.
   */
  outboxDeleted: number;
  /** Rows moved to the dead letters. */
  deadLettered: number;
  /**
   * Outbox rows updated: a failed attempt rescheduled (retried, or a rejection held), and rows made due at once
   * when PostHog accepts again after a failure.
   */
  outboxUpdated: number;
  /** Rows inserted into the outbox: recorded events, identify rows, dead letters retried. */
  outboxInserted: number;
  /** Age of the oldest queued event (null when the outbox is empty). */
  oldestAgeMs: number | null;
}

/** Reads the counters (a few catalog lookups and one primary-key lookup: cheap enough to sample every few seconds). */
export async function readDeliveryCounters(sql: postgres.Sql, options: { schema?: string } = {}): Promise<DeliveryCounters> {
  const [r] = await query(sql, q.tableCounters(options.schema ?? DEFAULT_SCHEMA));
  return {
    at: r!.at.toISOString(),
    outboxDeleted: r!.outbox_deleted,
    deadLettered: r!.dead_letters_inserted,
    outboxUpdated: r!.outbox_updated,
    outboxInserted: r!.outbox_inserted,
    oldestAgeMs: r!.oldest_age_ms === null ? null : Math.round(r!.oldest_age_ms),
  };
}
