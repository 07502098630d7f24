/**
 * The worker's pg-boss objects: where pg-boss lives, the drain queue, and how `migrate` installs them.
 * pg-boss itself is loaded only by `installPgBoss`: a handler that imports the library never loads it.
 */
import { DEFAULT_SCHEMA } from '../connection/config.ts';

/** pg-boss's own schema (pg-boss's default name, so an application's existing pg-boss install is shared). */
export const PGBOSS_SCHEMA = 'pgboss';

/** One drain queue per outbox schema. */
export function drainQueueName(schema: string): string {
  return schema === DEFAULT_SCHEMA ? 'posthog-outbox.drain' : `posthog-outbox.drain.${schema}`;
}

/**
 * Installs or upgrades pg-boss's schema and creates the drain queue: `short` policy (at most one run
 * queued, however many kicks), NOTIFY on send, no job retries (the outbox rows carry their own). Safe when
 * several processes run it at once: pg-boss installs under its own advisory lock, and creating a queue that
 * exists does nothing.
 */
export async function installPgBoss(databaseUrl: string, schema: string): Promise<void> {
  const { PgBoss } = await import('pg-boss');
  const boss = new PgBoss({ connectionString: databaseUrl, schema: PGBOSS_SCHEMA, migrate: true, schedule: false, supervise: false, max: 2 });
  boss.on('error', () => {});
  await boss.start();
  try {
    const queue = drainQueueName(schema);
    if (!(await boss.getQueue(queue))) {
      await boss.createQueue(queue, { policy: 'short', notify: true, retryLimit: 0, expireInSeconds: 15 * 60, deleteAfterSeconds: 3600 });
    }
  } finally {
    await boss.stop({ graceful: false, close: true, timeout: 2_000 });
  }
}
