/**
 * Reads for `/healthz` and `/metrics`, bounded so that a probe or a scrape answers fast whatever the database
 * does. An outbox table held under a lock (a migration, a `LOCK TABLE`, a `VACUUM FULL`) would otherwise keep
 * each read waiting for as long as the lock lasts. Each read is a transaction of its own whose statements wait
 * at most `lockMs` for a lock and run at most `statementMs` (set for that transaction only: the pool's other
 * users keep their settings), and the whole is given up after `totalMs`, which also bounds the wait for a free
 * connection of the worker's pool (whose lanes may all be stuck behind the same lock).
 */
import type postgres from 'postgres';
import { query } from '../../src/sql/statement.ts';
import * as q from '../../src/connection/connection.sql.ts';

export interface ReadBounds {
  lockMs: number;
  statementMs: number;
  totalMs: number;
}

/**
 * `/healthz` and `/metrics`: a lock is waited for 0.5 s, a statement may run 1 s, all of it (a free connection
 * included) 1.5 s. A probe (Kubernetes' default timeout: 1 s) and a scrape (Prometheus': 10 s) get an answer
 * in time; what legitimately takes longer than this on the outbox (a capped count reads 10,000 rows) is far
 * from it.
 */
export const PROBE_BOUNDS: ReadBounds = { lockMs: 500, statementMs: 1_000, totalMs: 1_500 };

/** The read was given up after `totalMs` (no connection, or no answer, in time). */
export class ReadTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'ReadTimeout';
  }
}

/** Runs `work` in a transaction with the bounds set (SET LOCAL); rejects with the database's error or a ReadTimeout. */
export async function boundedRead<T>(sql: postgres.Sql, bounds: ReadBounds, work: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const reading = sql.begin(async (tx) => {
    await query(tx, q.boundStatements(), { lockMs: bounds.lockMs, statementMs: bounds.statementMs });
    return work(tx);
  }) as Promise<T>;
  // A read given up on still ends by itself, within its statement bounds once it has a connection.
  reading.catch(() => undefined);
  try {
    return await Promise.race([
      reading,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new ReadTimeout(bounds.totalMs)), bounds.totalMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a failed read of an outbox table says, in a few words fit for `/healthz`'s body (never the database's text). */
export function unreadableReason(error: unknown, table: string): string {
  const code = (error as { code?: string } | undefined)?.code;
  if (error instanceof ReadTimeout) return 'timeout';
  if (code === '55P03') return `locked: ${table} is locked by another session (lock_timeout ${PROBE_BOUNDS.lockMs} ms)`;
  if (code === '57014') return `slow: reading ${table} took over ${PROBE_BOUNDS.statementMs} ms`;
  if (code === '42P01' || code === '3F000') return `missing: ${table} does not exist (run posthog-outbox migrate)`;
  return 'down';
}
