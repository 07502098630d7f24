/** What is waiting, what is failing, what died: the figures behind `posthog-outbox status`. Read-only. */
import type postgres from 'postgres';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import { redactSecrets } from '../errors/redact.ts';
import { identitiesStatus } from '../identify/identities.sql.ts';
import { query } from '../sql/statement.ts';
import * as q from './status.sql.ts';

export interface OutboxStatus {
  /** The PostHog target as the workers last reported it; null before any worker reported. */
  target: { failingSince: string | null; reason: string | null; updatedAt: string } | null;
  /**
   * Drain passes failing for a reason other than PostHog (PostgreSQL refusing to settle a batch, a lost
   * connection), as a worker last reported it: since when and why; null while they succeed.
   */
  drainFailing: { since: string; reason: string | null } | null;
  backlog: number;
  due: number;
  retrying: number;
  oldestAgeMs: number | null;
  nextRetryAt: string | null;
  deadLetters: number;
  /** Users, automation personas and organizations PostHog has been told about, and the oldest last identify. */
  profiles: { known: number; oldestSentAt: string | null };
  deadLettersByReason: { reason: string; count: number; lastDiedAt: string }[];
  retryingRows: { uuid: string; event: string; distinctId: string; attempts: number; nextAttemptAt: string; lastError: string | null }[];
}

/** Text a worker stored (masked again: rows written by an older version may hold a URL's password). */
const masked = <T extends string | null>(text: T): T => (text === null ? text : (redactSecrets(text) as T));

/** Reads the outbox's status; `limit` caps the retrying rows listed. Counts every row (a full scan of the outbox). */
export async function readStatus(sql: postgres.Sql, options: { schema?: string; limit?: number } = {}): Promise<OutboxStatus> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const [summary] = await query(sql, q.outboxStatus(schema));
  const reasons = await query(sql, q.deadLettersByReason(schema));
  const retrying = await query(sql, q.retryingRows(schema), { limit: options.limit ?? 10 });
  const [health] = await query(sql, q.targetHealth(schema));
  const [profiles] = await query(sql, identitiesStatus(schema));
  return {
    target: health
      ? { failingSince: health.failing_since?.toISOString() ?? null, reason: masked(health.reason), updatedAt: health.updated_at.toISOString() }
      : null,
    drainFailing: health?.drain_failing_since ? { since: health.drain_failing_since.toISOString(), reason: masked(health.drain_error) } : null,
    backlog: summary!.backlog,
    due: summary!.due,
    retrying: summary!.retrying,
    oldestAgeMs: summary!.oldest_age_ms === null ? null : Math.round(summary!.oldest_age_ms),
    nextRetryAt: summary!.next_retry_at?.toISOString() ?? null,
    deadLetters: reasons.reduce((n, r) => n + r.count, 0),
    profiles: { known: profiles!.known, oldestSentAt: profiles!.oldest_sent_at?.toISOString() ?? null },
    deadLettersByReason: reasons.map((r) => ({ reason: masked(r.reason), count: r.count, lastDiedAt: r.last_died_at.toISOString() })),
    retryingRows: retrying.map((r) => ({
      uuid: r.uuid,
      event: r.event,
      distinctId: r.distinct_id,
      attempts: r.attempts,
      nextAttemptAt: r.next_attempt_at.toISOString(),
      lastError: masked(r.last_error),
    })),
  };
}
