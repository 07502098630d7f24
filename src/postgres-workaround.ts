/**
 * postgres.js 3.4.9 can throw from a `setImmediate` after a connection closed (a buffered write to a socket
 * it already set to null): `TypeError: Cannot read properties of null (reading 'write')` at `nextWrite` in
 * `postgres/src/connection.js`. It escapes every try/catch and would take the process down when PostgreSQL
 * restarts. The query it belonged to has already been rejected with CONNECTION_CLOSED, so the write is
 * moot. Upstream: porsager/postgres#1154, #1208 (fixes proposed in #1168, #1209, not released).
 * Recognised precisely, so that every other uncaught error still stops the process.
 */
export function isPostgresClosedSocketWrite(error: unknown): boolean {
  // by name, not instanceof: test runners hand over a serialised copy of the error
  const e = error as { name?: unknown; message?: unknown; stack?: unknown } | null;
  if (!e || e.name !== 'TypeError' || typeof e.message !== 'string') return false;
  const stack = typeof e.stack === 'string' ? e.stack : '';
  return /reading 'write'/.test(e.message) && /nextWrite/.test(stack) && /postgres[\\/]+(cjs[\\/]+)?src[\\/]+connection\.js/.test(stack);
}
