/** What a connection is: whether it answers, and which server process serves it (pooler detection, src/connection/pooler.ts). */
import { type Statement, statement } from '../sql/statement.ts';

/** The database answers (connection checks, `/healthz`). */
export function ping(): Statement {
  return statement('SELECT 1');
}

/** The server process serving this statement: one per session on a direct or session-pooled connection. */
export function backendPid(): Statement<Record<never, never>, { pid: number }> {
  return statement(`SELECT pg_backend_pid() AS "pid"`);
}

/**
 * Bounds the calling transaction's statements (set for it only): each waits at most `:lockMs` milliseconds
 * for a lock (then 55P03) and runs at most `:statementMs` milliseconds (then 57014). `/healthz` and `/metrics` reads, the
 * console's snapshot.
 */
export function boundStatements(): Statement<{ lockMs: number; statementMs: number }> {
  return statement(`SELECT set_config('lock_timeout', :lockMs::text, true), set_config('statement_timeout', :statementMs::text, true)`);
}
