/**
 * The idle probe: while no pass is going and the worker is not paused, asks "is anything due?" (one index
 * lookup) and kicks a pass if so. Fast after passes that found work, slower while nothing turns up (the delays
 * are worker/scheduling/poll.ts's). It is how a worker hears of new events: handlers' transactions send no NOTIFY.
 *
 * A probe that gets no answer in time (worker/scheduling/deadline.ts) is on a connection that went silent (a network
 * partition): waiting on, the worker would hear of new events only from its once-a-minute safety-net pass.
 * It tells the worker, which replaces its pool (worker/lifecycle/database.ts), and probes again.
 */
import type postgres from 'postgres';
import { query } from '../../src/sql/statement.ts';
import * as q from './due.sql.ts';
import type { Logger } from '../types.ts';
import { NoAnswer, within } from './deadline.ts';
import { DEFAULT_POLL, nextPollDelay } from './poll.ts';

/** What the probe sees of its worker. */
export interface ProbedWorker {
  readonly signal: AbortSignal;
  /** No pass is going, none is being queued, and the worker is not paused. */
  idle(): boolean;
  kick(): void;
  /** A probe got no answer in time: its connection went silent. */
  stalled(): void;
}

export class IdleProbe {
  private timer: NodeJS.Timeout | undefined;
  private delay = DEFAULT_POLL.minMs;
  private readonly sql: postgres.Sql;
  private readonly schema: string;
  private readonly log: Logger;
  private readonly worker: ProbedWorker;

  constructor(sql: postgres.Sql, schema: string, log: Logger, worker: ProbedWorker) {
    this.sql = sql;
    this.schema = schema;
    this.log = log;
    this.worker = worker;
  }

  start(): void {
    this.timer = setTimeout(() => void this.tick(), this.delay);
  }

  /**
   * A drain loop ended. One that claimed rows means traffic: probe again soon. One that claimed nothing (the
   * rows the probe saw were held by another worker) lets the probe slow down.
   */
  loopEnded(claimedRows: boolean): void {
    this.delay = nextPollDelay(this.delay, claimedRows);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    if (this.worker.signal.aborted) return;
    if (this.worker.idle()) {
      try {
        const [row] = await within(query(this.sql, q.anyDue(this.schema), {}, { prepare: true }), 'the idle probe');
        if (row?.due) this.worker.kick();
        else this.delay = nextPollDelay(this.delay, false);
      } catch (error) {
        this.delay = DEFAULT_POLL.maxMs;
        if (error instanceof NoAnswer) {
          this.log.warn({ err: error.message }, 'the idle probe got no answer: reconnecting with a fresh pool');
          this.worker.stalled();
        } else {
          this.log.warn({ err: String((error as Error)?.message ?? error) }, 'the idle probe failed; trying again');
        }
      }
    }
    if (!this.worker.signal.aborted) this.timer = setTimeout(() => void this.tick(), this.delay);
  }
}
