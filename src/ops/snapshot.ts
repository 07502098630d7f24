/** Several reads that must agree with one another (a page's figures): one read-only snapshot, bounded. */
import type postgres from 'postgres';
import { boundStatements } from '../connection/connection.sql.ts';
import { query } from '../sql/statement.ts';
import * as q from './inspect.sql.ts';

/**
 * Runs `work` on one connection of `sql` inside a read-only REPEATABLE READ transaction, so that every read it
 * makes sees the same committed data (a backlog and its breakdown by event add up), and rolls it back. Its
 * statements wait at most `lockTimeoutMs` (default 2 s) for a lock and run at most `statementTimeoutMs`
 * (default 10 s): a table held by a migration makes the reads fail fast instead of queueing behind it.
 */
export async function inSnapshot<T>(
  sql: postgres.Sql,
  work: (sql: postgres.Sql) => Promise<T>,
  options: { lockTimeoutMs?: number; statementTimeoutMs?: number } = {},
): Promise<T> {
  const connection = await sql.reserve();
  try {
    await query(connection, q.beginSnapshot());
    try {
      await query(connection, boundStatements(), { lockMs: options.lockTimeoutMs ?? 2_000, statementMs: options.statementTimeoutMs ?? 10_000 });
      return await work(connection);
    } finally {
      await query(connection, q.endSnapshot()).catch(() => undefined);
    }
  } finally {
    connection.release();
  }
}
