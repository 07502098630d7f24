/**
 * The worker's own connection pool, replaced when it may be broken.
 *
 * postgres.js 3.4.9 can leave one of its connection objects broken after PostgreSQL closed it under a
 * transaction: the transaction's ROLLBACK (or its next statement) is written on the closed socket
 * (porsager/postgres#1208), which leaves that connection unable to send anything again, and the dying
 * session's error is handed to the next query the connection is given. From then on, queries the pool hands
 * to it wait out the connect timeout, fail with a stale error, or never settle. Nothing in postgres.js's API
 * reaches one connection, so the worker replaces the whole pool after a drain pass that lost its connection
 * or stopped making progress (worker/scheduling/worker.ts): the old pool is destroyed at once (every query still waiting
 * on it is rejected, and PostgreSQL rolls back its transactions, freeing their rows) and the next query opens
 * a fresh one. A lost connection happens on a failover or a restart, so this is rare and costs a reconnect.
 *
 * `sql` is a stable handle over whichever pool is current: what holds it (drain passes, idle probe, metrics,
 * target health, retention) keeps it across a renewal.
 */
import type postgres from 'postgres';

export class WorkerDatabase {
  /** Calls and properties go to the current pool. */
  readonly sql: postgres.Sql;
  private current: postgres.Sql;
  private readonly open: () => postgres.Sql;

  constructor(open: () => postgres.Sql) {
    this.open = open;
    this.current = open();
    const pool = () => this.current;
    this.sql = new Proxy(function handle() {}, {
      apply: (_target, _this, args: unknown[]) => Reflect.apply(pool() as unknown as (...a: unknown[]) => unknown, undefined, args),
      get: (_target, property) => Reflect.get(pool(), property),
    }) as unknown as postgres.Sql;
  }

  /** Destroys the current pool (what waits on it is rejected) and opens a fresh one for the next query. */
  renew(): void {
    const old = this.current;
    this.current = this.open();
    old.end({ timeout: 0 }).catch(() => undefined);
  }
}
