/**
 * The workers a database has seen, from pg-boss's instance registry: every worker's pg-boss registers itself
 * there and refreshes its row on a heartbeat (every 30 s), with its host, process, memory and its drain
 * queue's last job. Read-only.
 */
import type postgres from 'postgres';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import { drainQueueName, PGBOSS_SCHEMA } from '../outbox/queue.ts';
import { query } from '../sql/statement.ts';
import * as q from './inspect.sql.ts';

/** The application name of a worker's pg-boss sessions and of its own pool's (worker/lifecycle/lifecycle.ts). */
const BOSS_APPLICATION = 'posthog-outbox worker (pg-boss)';
const POOL_APPLICATION = 'posthog-outbox worker';

export interface WorkerSeen {
  /** pg-boss's id of the instance. */
  id: string;
  host: string;
  pid: number;
  startedAt: string;
  /** Its last heartbeat. */
  heartbeatAt: string;
  /** Stopped gracefully at; null for a worker that runs, or crashed (it goes quiet). */
  stoppedAt: string | null;
  /** Not stopped, and heard from within three heartbeats. */
  live: boolean;
  /** Earlier lives on this host that ended without a stop (crashes), as pg-boss counts them. */
  crashRestarts: number;
  /** Resident memory at the last heartbeat, in bytes. */
  rssBytes: number | null;
  /** CPU cores used at the last heartbeat. */
  cpu: number | null;
  /** The drain queue's last job end and last failed job, as of the last heartbeat. */
  lastJobEndedAt: string | null;
  lastErrorAt: string | null;
}

export interface Workers {
  /** Workers heard from in the last day, live ones first; null when the registry cannot be read (`unavailable` says why). */
  seen: WorkerSeen[] | null;
  unavailable?: string;
  /** Sessions the workers' own pools hold open on this database now. */
  sessions: number;
}

const iso = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? new Date(value).toISOString() : null);

/**
 * The workers of the outbox schema `schema` seen in the last day (up to 50). A registry that does not exist
 * (pg-boss before 12, or an instance registry turned off) or that this role may not read is `unavailable`, not
 * an error.
 */
export async function readWorkers(sql: postgres.Sql, options: { schema?: string } = {}): Promise<Workers> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const [{ sessions } = { sessions: 0 }] = await query(sql, q.sessionsNamed(), { application: POOL_APPLICATION });
  const [{ exists } = { exists: false }] = await query(sql, q.hasTable(), { table: `${PGBOSS_SCHEMA}.instance` });
  if (!exists) return { seen: null, unavailable: `no ${PGBOSS_SCHEMA}.instance table (pg-boss's instance registry)`, sessions };
  let rows: postgres.Row[];
  try {
    rows = await query(sql, q.workerInstances(PGBOSS_SCHEMA), { application: BOSS_APPLICATION, queue: drainQueueName(schema) });
  } catch (error) {
    return { seen: null, unavailable: `cannot read ${PGBOSS_SCHEMA}.instance: ${(error as Error).message}`, sessions };
  }
  const seen = rows.map((r) => ({
    id: r.id,
    host: r.host,
    pid: r.pid,
    startedAt: r.started_on.toISOString(),
    heartbeatAt: r.heartbeat_on.toISOString(),
    stoppedAt: r.stopped_on?.toISOString() ?? null,
    live: r.live,
    crashRestarts: r.crash_restarts,
    rssBytes: r.rss,
    cpu: r.cpu,
    lastJobEndedAt: iso(r.drain?.lastJobEndedOn),
    lastErrorAt: iso(r.drain?.lastErrorOn),
  }));
  return { seen, sessions };
}
