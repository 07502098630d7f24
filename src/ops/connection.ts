/** One home for "connect, do the work, close": every operation of `posthog-outbox/ops` runs through it. */
import type postgres from 'postgres';
import { connectDatabase } from '../connection/config.ts';

/**
 * Connects to `url` (throwing an Error naming the server, password masked, if it does not answer), runs
 * `work` and closes the connection, also when `work` throws.
 */
export async function withConnection<T>(url: string, work: (sql: postgres.Sql) => Promise<T>, options: { max?: number } = {}): Promise<T> {
  const sql = await connectDatabase(url, { max: options.max ?? 1 });
  try {
    return await work(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
