/**
 * The worker's public types, in one module that the worker's parts and its entry (worker/index.ts) import
 * alike: what `startWorker` is given (`WorkerOptions`, `Logger`) and what it gives back (`OutboxWorker`, its
 * `PassStats`, `TargetState` and `DrainState`).
 */
import type { EventEmitter } from 'node:events';
import type { SettingsInput } from './settings/settings.ts';

/** The subset of a pino logger the worker uses. */
export interface Logger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

/** What a worker is started with: its settings (worker/settings/settings.ts declares them: defaults, units, rules), its database and hooks. */
export interface WorkerOptions extends SettingsInput {
  /**
   * A direct connection, or a session-mode pooler: the worker holds row locks across a PostHog request and
   * runs pg-boss, so a transaction-mode pooler (PgBouncer, Supavisor, Neon's pooled endpoint) is refused.
   */
  databaseUrl: string;
  /**
   * Aborting it while `startWorker` is still starting (a deploy that cancels the new process) stops what
   * has started and makes `startWorker` reject with an `AbortError`.
   */
  signal?: AbortSignal;
  logger?: Logger;
}

/** The PostHog target as this worker sees it. */
export interface TargetState {
  /** Since when every pass has ended on a target failure; null while PostHog accepts. */
  failingSince: Date | null;
  /** The last failure (redacted), while failing. */
  reason: string | null;
}

/** Whether this worker's drain passes fail for a reason other than PostHog (the database refused, a connection was lost). */
export interface DrainState {
  /** Since when every drain pass has failed; null while they succeed. */
  failingSince: Date | null;
  /** The last failure's reason (PostgreSQL's SQLSTATE and message), while failing. */
  reason: string | null;
  /** Drain passes failed in a row: the worker's pause before the next grows with it. */
  failedPasses: number;
}

export interface PassStats {
  claimed: number;
  delivered: number;
  /** Delivered events PostHog accepted with a warning (Capture V1 verdict `warning`). */
  warned: number;
  retried: number;
  deadLettered: number;
  /** `$identify` / `$groupidentify` events queued by this pass. */
  identified: number;
  /** Identify rows deleted unsent because a newer identify of the same entity was queued since. */
  superseded: number;
  /** HTTP requests made to PostHog. */
  requests: number;
  durationMs: number;
  /** True when the pass stopped with due rows left (time limit or shutdown), so another should follow. */
  more: boolean;
  /** Claimed rows given back unsent (the pass had already failed, or the worker is stopping): no attempt counted. */
  released: number;
  /** Rows a rejection was pinned on but not confirmed as poison (the target may reject everything): kept, retried. */
  held: number;
  /** Batches judged to be rejected broadly by the target (every event, or too many): nothing dead-lettered. */
  rejectedBroadly: number;
  /** Set when PostHog failed in a passing way: how long the worker should wait before the next pass. */
  pauseMs?: number;
  /** The pass's last passing failure (redacted), e.g. `PostHog answered HTTP 503: ...`. */
  error?: string;
  /** The pass's last Capture V1 warning: how many events of a batch, and PostHog's details. */
  warning?: string;
  /** PostgreSQL refused to settle a batch (worker/settle/ledger.ts `settle`): the pass ended, the worker backs off. */
  settleError?: string;
}

export interface OutboxWorker extends EventEmitter<{ pass: [PassStats]; failedPass: [string] }> {
  /** Sums over every pass so far. */
  readonly totals: Omit<PassStats, 'durationMs' | 'more' | 'pauseMs' | 'error' | 'settleError' | 'warning'> & { passes: number };
  /** Whether PostHog is failing, as of this worker's last pass. */
  readonly target: TargetState;
  /** Whether this worker's drain passes fail for another reason (the database refused), since when and why. */
  readonly drainState: DrainState;
  /** Asks for a drain pass now (e.g. right after your own commit, to skip the wait for the next probe). */
  kick(): void;
  /** Where `/healthz` and `/metrics` are served, when `metrics` was given. */
  readonly healthUrl: string | undefined;
  /**
   * Stops claiming, lets the batches in flight finish (giving them back if they take longer than
   * `timeoutMs`, default the `shutdownTimeoutMs` setting), stops pg-boss and closes the connections.
   */
  stop(timeoutMs?: number): Promise<void>;
}
