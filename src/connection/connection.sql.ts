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
