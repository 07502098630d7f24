/**
 * Whether a connection URL leads to a transaction-mode pooler (PgBouncer `pool_mode = transaction`,
 * Supavisor or Neon's pooled endpoint): there, a client's statements outside a transaction may run on any
 * server session, and two clients take turns on one. The worker (prepared statements, pg-boss's LISTEN
 * connection) and the CLI commands that take session-level locks need a session of their own: they refuse
 * such a URL up front with a message that says what to use instead.
 *
 * The check compares server process ids (`pg_backend_pid()`), which on a direct or session-pooled
 * connection identify the client's one session: client A asks for its pid; client B opens a transaction
 * and asks for its pid; A asks again while B's transaction is open. B getting A's session, or A's pid
 * changing, can only happen behind a transaction pooler (PgBouncer hands the most recently released server
 * connection to the next transaction, so B gets A's at once). Three rounds.
 */
import postgres from 'postgres';
import { redactUrl } from './config.ts';
import { OutboxError } from '../errors/errors.ts';
import { query } from '../sql/statement.ts';
import { backendPid } from './connection.sql.ts';

/** How long A's second question may wait while B holds its transaction (a pooler out of server connections). */
const WAIT_MS = 3_000;

export async function behindTransactionPooler(url: string, rounds = 3): Promise<boolean> {
  const sql = postgres(url, {
    max: 2,
    prepare: false,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: 'posthog-outbox session check' },
  });
  try {
    const a = await sql.reserve();
    try {
      const pidOf = async (client: postgres.Sql | postgres.TransactionSql | postgres.ReservedSql) => (await query(client, backendPid()))[0]!.pid;
      for (let round = 0; round < rounds; round++) {
        const before = await pidOf(a);
        const pooled = await sql.begin(async (b) => {
          if ((await pidOf(b)) === before) return true;
          let timer: NodeJS.Timeout | undefined;
          const after = await Promise.race([pidOf(a), new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), WAIT_MS)))]).finally(
            () => clearTimeout(timer),
          );
          // No answer while B's transaction is open: A is queued for a server connection, which only a pooler does.
          return after === undefined || after !== before;
        });
        if (pooled) return true;
      }
      return false;
    } finally {
      a.release();
    }
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
  }
}

/**
 * Throws OutboxError `transaction_pooler` (`field`: where the URL came from) when `url` leads to a transaction-mode pooler.
 * Connection errors propagate as they are.
 */
export async function refuseTransactionPooler(url: string, field: string): Promise<void> {
  if (!(await behindTransactionPooler(url))) return;
  throw new OutboxError(
    'transaction_pooler',
    field,
    `${redactUrl(url)} leads to a transaction-mode connection pooler (two client connections were served by one server session): ` +
      'the worker, migrate and backfill-profiles need a session of their own (prepared statements, the LISTEN connection of pg-boss, session-level advisory locks). ' +
      'Give them a direct connection, or a session-mode pooler; ' +
      'your application keeps the pooled URL, with prepare: false on its postgres.js client.',
  );
}
