/**
 * The PostHog target as this worker sees it: whether its passes end on target failures (and since when, and
 * why), when PostHog last accepted one of its requests, and the `target_health` row that tells
 * `posthog-outbox status` (and the other workers' operators) the same. Read by `/metrics` too.
 */
import type postgres from 'postgres';
import { redactSecrets } from '../../src/errors/redact.ts';
import { query } from '../../src/sql/statement.ts';
import * as q from './health.sql.ts';
import { within } from '../scheduling/deadline.ts';
import type { DrainState, Logger, TargetState } from '../types.ts';

/** What a worker remembers about its target across passes. */
export interface TargetMemory {
  /** When one of this worker's requests was last accepted (null: not since it started). */
  lastAcceptedAt: Date | null;
}

export class TargetHealth {
  /** What `OutboxWorker.target` and the metrics show. */
  readonly state: TargetState = { failingSince: null, reason: null };
  /** Shared by this worker's passes: when PostHog last accepted one of its requests. */
  readonly memory: TargetMemory = { lastAcceptedAt: null };
  /** Whether target_health may say "failing" because of us (or we have not said "working" since start). */
  private dirty = true;
  private readonly sql: postgres.Sql;
  private readonly schema: string;
  private readonly log: Logger;

  constructor(sql: postgres.Sql, schema: string, log: Logger) {
    this.sql = sql;
    this.schema = schema;
    this.log = log;
  }

  /** A pass ended on a target failure: logged when it is the first in a row, and recorded in target_health. */
  async failing(text: string): Promise<void> {
    // Masked again here, whoever wrote it: the reason is logged, stored and shown by `status` (a URL a fetch
    // error quotes may carry credentials).
    const reason = redactSecrets(text);
    const first = this.state.failingSince === null;
    this.state.failingSince ??= new Date();
    this.state.reason = reason;
    this.dirty = true;
    if (first)
      this.log.error(
        { reason, since: this.state.failingSince.toISOString() },
        'PostHog target failing: nothing is delivered or dead-lettered until it recovers',
      );
    await within(query(this.sql, q.markTargetFailing(this.schema), { reason }), 'recording the target failure').catch((error: unknown) =>
      this.log.warn({ err: String(error) }, 'could not record the target failure'),
    );
  }

  /** A pass delivered events: a failing target has recovered; target_health says so (once, until it fails again). */
  async working(): Promise<void> {
    if (this.state.failingSince !== null) {
      this.log.info({ since: this.state.failingSince.toISOString(), reason: this.state.reason }, 'PostHog target recovered');
      this.state.failingSince = null;
      this.state.reason = null;
    }
    if (!this.dirty) return;
    this.dirty = false;
    await within(query(this.sql, q.markTargetWorking(this.schema)), 'recording the target recovery').catch((error: unknown) => {
      this.dirty = true;
      this.log.warn({ err: String(error) }, 'could not record the target recovery');
    });
  }
}

/**
 * Drain passes that fail (not on PostHog: on the database, or on anything unexpected). Each is counted and the
 * worker backs off before the next (worker/scheduling/worker.ts); the first of a streak, and a change of reason, is logged
 * at error level (not every pass: a failure that lasts would flood the log), the end of a streak at info. The
 * state goes to target_health (`drain_failing_since`, `drain_error`) for `posthog-outbox status`, as far as the
 * database takes the write, and to `/healthz`, which says unavailable once passes have failed for `unhealthyAfterMs`.
 */
export class DrainHealth {
  readonly state: DrainState = { failingSince: null, reason: null, failedPasses: 0 };
  private readonly sql: postgres.Sql;
  private readonly schema: string;
  private readonly log: Logger;

  constructor(sql: postgres.Sql, schema: string, log: Logger) {
    this.sql = sql;
    this.schema = schema;
    this.log = log;
  }

  async failed(text: string): Promise<void> {
    // Masked as the target's reasons are: a connection error may quote a URL with its credentials.
    const reason = redactSecrets(text);
    const first = this.state.failingSince === null;
    this.state.failedPasses++;
    this.state.failingSince ??= new Date();
    if (first || reason !== this.state.reason) {
      this.log.error(
        { reason, since: this.state.failingSince.toISOString(), failedPasses: this.state.failedPasses },
        'drain passes failing: the worker backs off between runs until one succeeds',
      );
    }
    this.state.reason = reason;
    await within(query(this.sql, q.markDrainFailing(this.schema), { reason }), 'recording the failed drain pass').catch(() => undefined);
  }

  async succeeded(): Promise<void> {
    if (this.state.failingSince === null) return;
    this.log.info(
      { since: this.state.failingSince.toISOString(), failedPasses: this.state.failedPasses, reason: this.state.reason },
      'drain passes succeed again',
    );
    const recorded = await within(query(this.sql, q.markDrainWorking(this.schema)), 'recording the drain recovery').then(
      () => true,
      () => false,
    );
    if (!recorded) return; // said again after the next pass
    Object.assign(this.state, { failingSince: null, reason: null, failedPasses: 0 });
  }

  /** Throws (for `/healthz`) once every drain pass has failed for `afterMs`. */
  check(afterMs: number, now = Date.now()): void {
    const since = this.state.failingSince;
    if (since !== null && now - since.getTime() >= afterMs) {
      throw new Error(`every drain pass has failed since ${since.toISOString()} (${this.state.failedPasses} runs): ${this.state.reason}`);
    }
  }
}
