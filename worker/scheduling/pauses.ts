/**
 * when a worker may drain again after failures, and who is told. Two kinds of failed drain pass pause it:
 * PostHog failing in a passing way (`targetFailed`: the pass's own backoff, and at least the worker's, growing
 * with the failed passes in a row; the next pass is a one-lane probe) and anything else, the database refusing to
 * claim or settle or a lost connection (`drainFailed`). Without a pause the idle probe would start the next pass
 * within milliseconds, which would claim the same rows again: during an outage a request per batch of backlog,
 * and after a settle PostgreSQL refused, the same batch again. Backoff per worker, not only per row: during an
 * outage each pass meets fresh rows (first attempt, shortest delay).
 */
import { retryDelayMs, type BackoffPolicy } from '../settle/backoff.ts';
import type { DrainHealth, TargetHealth } from '../health/target.ts';

export class Pauses {
  /** No pass starts before this (epoch ms). */
  until = 0;
  /** Runs in a row that ended on a passing PostHog failure (the next pass is a probe while it is above 0). */
  private targetFailures = 0;
  private readonly backoff: BackoffPolicy;
  private readonly target: TargetHealth;
  private readonly drain: DrainHealth;

  constructor(backoff: BackoffPolicy, target: TargetHealth, drain: DrainHealth) {
    this.backoff = backoff;
    this.target = target;
    this.drain = drain;
  }

  get paused(): boolean {
    return Date.now() < this.until;
  }

  /** PostHog failed the last pass: the next one probes with one lane. */
  get probing(): boolean {
    return this.targetFailures > 0;
  }

  /** A pass ended on a passing PostHog failure; `pauseMs` is the pass's own wish (its rows' shortest backoff). */
  async targetFailed(pauseMs: number, reason: string): Promise<void> {
    this.targetFailures++;
    this.until = Date.now() + Math.max(pauseMs, retryDelayMs(this.targetFailures, this.backoff));
    await this.target.failing(reason);
  }

  /** A pass delivered events: PostHog works. Returns whether it had been failing (rows waiting out a backoff may go now). */
  async targetWorks(): Promise<boolean> {
    const wasFailing = this.targetFailures > 0;
    this.targetFailures = 0;
    await this.target.working();
    return wasFailing;
  }

  /** A pass failed for a reason other than PostHog: counted and said once per streak (worker/health/target.ts), then a pause. */
  async drainFailed(reason: string): Promise<void> {
    await this.drain.failed(reason);
    this.until = Math.max(this.until, Date.now() + retryDelayMs(this.drain.state.failedPasses, this.backoff));
  }

  /** A pass did not fail on the database. */
  drainWorks(): Promise<void> {
    return this.drain.succeeded();
  }
}
