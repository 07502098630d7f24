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

/** Error codes of a lost or refused database connection (postgres.js, Node's net, PostgreSQL shutdown). */
const CONNECTION_LOSS = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up / shutting down)
]);

/**
 * postgres.js 3.4.9 also starts a query of its own on each new connection (the array types) without
 * awaiting it; when the server goes away during it, its rejection is unhandled. An unhandled error whose
 * code says the connection was lost comes from such internals (every query of ours is awaited and
 * handled), so a process can log it and go on: it reconnects on the next query.
 */
export function isPostgresConnectionLoss(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONNECTION_LOSS.has(code);
}

/**
 * The same dropped promise fails with other errors too, e.g. when the role may no longer log in (28000) or a
 * `statement_timeout` cancels it (57014): upstream porsager/postgres#1192, #1205, #1223 (open). The error
 * carries postgres.js's own array-type query, so it is recognised by that query: no query of ours reads
 * `pg_catalog.pg_type`. The query that opened the connection fails (or runs) on its own terms.
 */
export function isPostgresTypeFetchFailure(error: unknown): boolean {
  const query = (error as { query?: unknown } | null)?.query;
  return typeof query === 'string' && /\bfrom pg_catalog\.pg_type a\b/.test(query) && /\btyparray\b/.test(query);
}

/**
 * An unhandled error from postgres.js's own array-type query (its dropped promise, above): the connection
 * was lost under it, or it failed for another reason. A process logs it and goes on.
 */
export function isPostgresStrayRejection(error: unknown): boolean {
  return isPostgresConnectionLoss(error) || isPostgresTypeFetchFailure(error);
}
