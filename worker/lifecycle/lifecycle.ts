/**
 * What a worker opens and closes: its connection pool, pg-boss and the health server; the checks a start
 * makes before it registers anything; how a start that failed (or was cancelled) is undone; and how `stop()`
 * lets the last pass finish, or gives its rows back, before closing everything.
 */
import { PgBoss } from 'pg-boss';
import postgres from 'postgres';
import { redactUrl } from '../../src/connection/config.ts';
import { checkSchemaKnown } from '../../src/outbox/journal.ts';
import { ping } from '../../src/connection/connection.sql.ts';
import { query } from '../../src/sql/statement.ts';
import * as q from '../health/health.sql.ts';
import { boundedRead, PROBE_BOUNDS, unreadableReason } from '../health/bounded-read.ts';
import { startHealthServer, type HealthServer, Unready } from '../health/http.ts';
import type { Logger, WorkerOptions } from '../types.ts';
import type { WorkerMetrics } from '../health/metrics.ts';
import { PGBOSS_SCHEMA } from '../../src/outbox/queue.ts';
import type { WorkerSettings } from '../settings/settings.ts';

/**
 * The worker's pool (postgres.js connects on its first query): each lane holds a connection for its batch's
 * transaction, plus two for the rest.
 */
export function createWorkerPool(databaseUrl: string, settings: Pick<WorkerSettings, 'concurrency'>): postgres.Sql {
  return postgres(databaseUrl, {
    max: settings.concurrency + 2,
    connect_timeout: 10,
    backoff: reconnectDelaySeconds,
    onnotice: () => {},
    connection: { application_name: 'posthog-outbox worker' },
  });
}

/**
 * How long the pool waits before it reconnects a closed connection, after `retries` failed attempts in a row
 * (counted across the pool, reset by a connection that succeeds): 0.1 s, doubling, at most 1 s. postgres.js's
 * default grows to 10-20 s within a few refused attempts, so after PostgreSQL had been down for a few
 * seconds the idle probe and the drain passes waited that long once it was back (the probe gave up after its
 * 10 s bound). Attempts stay few while the database is down: only a waiting query reconnects, and the idle
 * probe, failing, asks twice a second.
 */
export function reconnectDelaySeconds(retries: number): number {
  return Math.min(0.05 * 2 ** retries, 1);
}

/**
 * Throws unless `migrate` has installed the outbox schema and pg-boss's, and throws OutboxError (`schema`)
 * if a newer release migrated the schema: this worker could misread the rows it holds.
 */
export async function checkInstalled(sql: postgres.Sql, schema: string): Promise<void> {
  const [migrated] = await query(sql, q.installed(), { outboxTable: `${schema}.outbox`, pgbossSchema: PGBOSS_SCHEMA });
  if (!migrated?.ok)
    throw new Error(
      `the outbox schema "${schema}" or pg-boss's schema is missing: run \`posthog-outbox migrate\` (or \`migrate()\` from posthog-outbox) first`,
    );
  await checkSchemaKnown(sql, schema);
}

/** How long one of pg-boss's statements may wait for its answer (passed to node-postgres: not in pg-boss's types). */
export const PGBOSS_STATEMENT_MS = 30_000;

/** pg-boss on the schema `migrate` installed (it migrates nothing itself), its errors logged. Not started yet. */
export function createBoss(databaseUrl: string, log: Logger): PgBoss {
  const boss = new PgBoss({
    connectionString: databaseUrl,
    schema: PGBOSS_SCHEMA,
    useListenNotify: true,
    migrate: false,
    createSchema: false,
    max: 3,
    application_name: 'posthog-outbox worker (pg-boss)',
    // node-postgres waits forever by default: a connection gone silent (network partition) would hold
    // pg-boss's job fetching and our queuing for good. A statement that fails returns its connection to the
    // pool as broken, so the next one opens a fresh connection (worker/scheduling/deadline.ts has the worker's own bounds).
    connectionTimeoutMillis: 10_000,
    ...({ query_timeout: PGBOSS_STATEMENT_MS } as object),
  });
  boss.on('error', (error: unknown) => log.error({ err: String((error as Error)?.message ?? error) }, 'pg-boss error'));
  return boss;
}

/**
 * `/healthz`'s outbox check: the outbox table itself can be read, within `PROBE_BOUNDS`. The database may
 * answer while the outbox cannot be worked (its table locked, its schema dropped): not ready then, and the
 * body says which.
 */
async function outboxReadable(sql: postgres.Sql, schema: string): Promise<void> {
  try {
    await boundedRead(sql, PROBE_BOUNDS, (tx) => query(tx, q.probeOutbox(schema)));
  } catch (error) {
    throw new Unready(unreadableReason(error, `${schema}.outbox`), { cause: error });
  }
}

/** Serves `/healthz` (ready while the database, the outbox table and the drain queue answer) and the metrics. */
export function serveHealth(
  where: NonNullable<WorkerSettings['metrics']>,
  metrics: WorkerMetrics,
  deps: { sql: postgres.Sql; schema: string; boss: PgBoss; queue: string; log: Logger; drain: () => Promise<void> },
): Promise<HealthServer> {
  const { sql, schema, boss, queue, log, drain } = deps;
  return startHealthServer({
    port: where.port,
    host: where.host,
    registry: metrics.registry,
    checks: { database: () => query(sql, ping()), outbox: () => outboxReadable(sql, schema), pgboss: () => boss.getQueue(queue), drain },
    onCheckFailed: (check, error) => log.warn({ check, err: String((error as Error)?.message ?? error) }, 'health check failed'),
  });
}

/** What a failed start has opened so far. */
export interface Opened {
  sql: postgres.Sql;
  boss?: PgBoss;
  closeHealth?: () => Promise<void>;
}

/** Closes what a failed start opened. A pg-boss still starting (waiting on a lock) is not waited for: its stop waits for its start. */
export async function abandonStart({ sql, boss, closeHealth }: Opened): Promise<void> {
  await closeHealth?.().catch(() => undefined);
  const stopBoss = boss?.stop({ graceful: false, close: true, timeout: 1_000 }).catch(() => undefined);
  await Promise.race([stopBoss, new Promise((r) => setTimeout(r, 2_000).unref())]);
  await sql.end({ timeout: 1 }).catch(() => undefined);
}

/**
 * The error a failed start rejects with: the signal's reason when it was cancelled, a clear one (the
 * password masked) when the database cannot be reached, else the error itself.
 */
export function startFailure(error: unknown, options: Pick<WorkerOptions, 'databaseUrl' | 'signal'>): unknown {
  if (options.signal?.aborted) return options.signal.reason;
  const e = error as { code?: string; message?: string };
  if (e?.code && /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|CONNECT_TIMEOUT|28P01|3D000)$/.test(e.code)) {
    return new Error(`cannot reach the database at ${redactUrl(options.databaseUrl)}: ${e.code} ${e.message ?? ''}`.trim());
  }
  return error;
}

/**
 * Waits for a stopping worker's drain loop (`running`) up to `timeoutMs`. If it still runs then, gives its
 * rows back rather than wait out the lease: closing the connections rolls back the batches' transactions.
 * A batch that still lands is a same-uuid duplicate.
 */
export async function finishOrRelease(
  running: Promise<void> | undefined,
  stillRunning: () => boolean,
  timeoutMs: number,
  sql: postgres.Sql,
  log: Logger,
): Promise<void> {
  if (!running) return;
  let timedOut = false;
  await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs).unref())]).then(() => {
    timedOut = stillRunning();
  });
  if (timedOut) {
    await sql.end({ timeout: 0 }).catch(() => undefined);
    log.warn({}, 'stopped before in-flight batches finished; their rows were released');
  }
}

/** Closes what a stopped worker opened, after its last pass: the health server, pg-boss, then the pool. */
export async function closeAll(closers: readonly (() => Promise<void>)[], boss: PgBoss, sql: postgres.Sql): Promise<void> {
  for (const close of closers) await close().catch(() => undefined);
  await boss.stop({ graceful: false, close: true, timeout: 2_000 }).catch(() => undefined);
  await sql.end({ timeout: 5 }).catch(() => undefined);
}
