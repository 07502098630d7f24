/**
 * The PostHog target as this worker sees it: whether its runs end on target failures (and since when, and
 * why), when PostHog last accepted one of its requests, and the `target_health` row that tells
 * `posthog-outbox status` (and the other workers' operators) the same. Read by `/metrics` too.
 */
import type postgres from 'postgres';
import { redactSecrets } from '../src/redact.ts';
import * as q from '../src/sql/index.ts';
import { within } from './deadline.ts';
import type { TargetMemory } from './drain.ts';
import type { Logger, TargetState } from './index.ts';

export class TargetHealth {
  /** What `OutboxWorker.target` and the metrics show. */
  readonly state: TargetState = { failingSince: null, reason: null };
  /** Shared by this worker's runs: when PostHog last accepted one of its requests. */
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

  /** A run ended on a target failure: logged when it is the first in a row, and recorded in target_health. */
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
    await within(this.sql.unsafe(q.markTargetFailing(this.schema), [reason]), 'recording the target failure').catch((error: unknown) =>
      this.log.warn({ err: String(error) }, 'could not record the target failure'),
    );
  }

  /** A run delivered events: a failing target has recovered; target_health says so (once, until it fails again). */
  async working(): Promise<void> {
    if (this.state.failingSince !== null) {
      this.log.info({ since: this.state.failingSince.toISOString(), reason: this.state.reason }, 'PostHog target recovered');
      this.state.failingSince = null;
      this.state.reason = null;
    }
    if (!this.dirty) return;
    this.dirty = false;
    await within(this.sql.unsafe(q.markTargetWorking(this.schema)), 'recording the target recovery').catch((error: unknown) => {
      this.dirty = true;
      this.log.warn({ err: String(error) }, 'could not record the target recovery');
    });
  }
}
