/**
 * The delivery chart's figures. Nothing in the database keeps a history of deliveries (a delivered row is
 * deleted; each worker counts its own in `/metrics`), so the console keeps one while it runs: every
 * `sampleIntervalMs` it reads PostgreSQL's counters of the outbox tables (`readDeliveryCounters`), and
 * the difference between two readings is what every worker did in between. Per minute of the last hour:
 * delivered (rows deleted from the outbox other than those moved to the dead letters), retried (outbox rows
 * updated), dead-lettered (rows inserted into the dead letters), and the lag (the oldest queued event's age at
 * the minute's last reading). The history starts when the console does and is lost when it stops.
 */
import type postgres from 'postgres';
import { type DeliveryCounters, readDeliveryCounters } from '../ops/delivery.ts';
import { redactSecrets } from '../errors/redact.ts';

export interface DeliveryMinute {
  /** The minute's start (ISO). */
  minute: string;
  /** Null for a minute no two readings span (before the console started, or while the database did not answer). */
  delivered: number | null;
  retried: number | null;
  deadLettered: number | null;
  /** The oldest queued event's age at the minute's last reading (0: the outbox was empty). */
  lagMs: number | null;
}

export interface DeliveryHistory {
  /** The first reading's time; null before it. */
  since: string | null;
  sampleIntervalMs: number;
  /** The last 60 minutes, oldest first, the current one last. */
  minutes: DeliveryMinute[];
  /** Why the last reading failed, if it did. */
  error: string | null;
}

const MINUTE = 60_000;
const KEPT_MS = 62 * MINUTE;

export class DeliverySampler {
  private readonly readings: DeliveryCounters[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private error: string | null = null;
  private readonly sql: postgres.Sql;
  private readonly schema: string;
  private readonly intervalMs: number;

  constructor(sql: postgres.Sql, schema: string, intervalMs: number) {
    this.sql = sql;
    this.schema = schema;
    this.intervalMs = intervalMs;
  }

  /** Takes the first reading now and one every interval after (the timer does not keep the process alive). */
  start(): void {
    if (this.timer !== undefined) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  /** One reading (skipped while the previous one is still out). */
  sample(): Promise<void> {
    this.reading ??= readDeliveryCounters(this.sql, { schema: this.schema })
      .then((counters) => {
        this.readings.push(counters);
        const oldest = Date.parse(counters.at) - KEPT_MS;
        while (this.readings.length > 2 && Date.parse(this.readings[0]!.at) < oldest) this.readings.shift();
        this.error = null;
      })
      .catch((error: unknown) => {
        this.error = redactSecrets(error instanceof Error ? error.message : String(error));
      })
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  /** Waits for the reading in flight, and stops. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.reading;
  }

  /** The last hour, by minute, as of the last reading. */
  history(): DeliveryHistory {
    const last = this.readings.at(-1);
    const end = Math.floor(Date.parse(last?.at ?? new Date().toISOString()) / MINUTE) * MINUTE;
    const minutes = new Map<number, DeliveryMinute>();
    for (let m = end - 59 * MINUTE; m <= end; m += MINUTE)
      minutes.set(m, { minute: new Date(m).toISOString(), delivered: null, retried: null, deadLettered: null, lagMs: null });
    for (let i = 1; i < this.readings.length; i++) {
      const [a, b] = [this.readings[i - 1]!, this.readings[i]!];
      const slot = minutes.get(Math.floor(Date.parse(b.at) / MINUTE) * MINUTE);
      if (!slot) continue;
      slot.lagMs = b.oldestAgeMs ?? 0;
      const deadLettered = b.deadLettered - a.deadLettered;
      const deleted = b.outboxDeleted - a.outboxDeleted;
      const retried = b.outboxUpdated - a.outboxUpdated;
      // The statistics were reset (or the server restarted) in between: this pair says nothing.
      if (deadLettered < 0 || deleted < 0 || retried < 0) continue;
      slot.deadLettered = (slot.deadLettered ?? 0) + deadLettered;
      slot.delivered = (slot.delivered ?? 0) + Math.max(0, deleted - deadLettered);
      slot.retried = (slot.retried ?? 0) + retried;
    }
    return { since: this.readings[0]?.at ?? null, sampleIntervalMs: this.intervalMs, minutes: [...minutes.values()], error: this.error };
  }
}
