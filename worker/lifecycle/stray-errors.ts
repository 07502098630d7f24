/**
 * postgres.js's known stray errors (src/connection/postgres-workaround.ts), for the process a worker runs in: they
 * escape every try/catch (an `uncaughtException`, or an unhandled rejection, which Node turns into one), and
 * a process that exits on them goes down with every PostgreSQL restart. `posthog-outbox worker` survives
 * them through this function; a process that embeds `startWorker` calls it from its own handler.
 */
import { isPostgresClosedSocketWrite, isPostgresStrayRejection } from '../../src/connection/postgres-workaround.ts';
import type { Logger } from '../types.ts';

/**
 * True, after a warning on `log`, when `error` is one of postgres.js's two known stray errors: a write on a
 * closed connection's socket (porsager/postgres#1208), or the rejection of its own array-type query that no
 * caller can catch (#1192). False, logging nothing, for any other error: stop the process as you would have.
 *
 * ```ts
 * process.on('uncaughtException', (error) => {
 *   if (ignorePostgresStrayError(error, logger)) return;
 *   logger.error({ err: error }, 'uncaught error');
 *   process.exit(1);
 * });
 * ```
 */
export function ignorePostgresStrayError(error: unknown, log: Logger): boolean {
  if (isPostgresClosedSocketWrite(error)) {
    log.warn(
      { err: (error as Error).message },
      'ignored a write on a closed database connection (postgres.js bug, porsager/postgres#1208); its query already failed, and the worker replaces its pool after a pass that lost its connection',
    );
    return true;
  }
  if (isPostgresStrayRejection(error)) {
    log.warn(
      { err: (error as { message?: unknown }).message, code: (error as { code?: unknown }).code },
      'database error outside a query of ours (postgres.js internals: a lost connection or its own type query); reconnecting on the next one',
    );
    return true;
  }
  return false;
}
