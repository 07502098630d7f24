/** `posthog-outbox migrate`: creates or upgrades the outbox schema. */
import { Command } from 'commander';
import { connectDatabase, redactUrl } from '../src/config.ts';
import { refuseTransactionPooler } from '../src/pooler.ts';
import { migrateOutbox } from '../src/outbox/migrate.ts';
import { quoteSchema } from '../src/sql/index.ts';
import { installPgBoss } from '../worker/queue.ts';
import { databaseUrlOption, directUrlOption, schemaOption, sessionUrl } from './options.ts';

export function migrateCommand(): Command {
  return new Command('migrate')
    .description("Create or upgrade the outbox tables and pg-boss's schema (with the drain queue). Idempotent; safe to run from several processes at once.")
    .addOption(databaseUrlOption())
    .addOption(directUrlOption())
    .addOption(schemaOption())
    .action(async (options: { databaseUrl?: string; directUrl?: string; schema: string }) => {
      // DDL under an advisory lock and pg-boss's installer: a session of its own, not a transaction pooler.
      const { url, field } = sessionUrl(options);
      quoteSchema(options.schema);
      const sql = await connectDatabase(url, { max: 1 });
      await refuseTransactionPooler(url, field).catch(async (error: unknown) => {
        await sql.end({ timeout: 1 });
        throw error;
      });
      try {
        const { applied } = await migrateOutbox(sql, {
          schema: options.schema,
          onLockTimeout: ({ attempt, retryInMs, message }) =>
            process.stderr.write(
              `posthog-outbox: a table the migration changes is in use (${message}); rolled back so as not to block your application's writes, trying again in ${retryInMs / 1000} s (attempt ${attempt + 1})\n`,
            ),
        });
        await installPgBoss(url, options.schema);
        process.stdout.write(
          applied.length === 0
            ? `outbox schema "${options.schema}" is up to date on ${redactUrl(url)}\n`
            : `applied ${applied.length} migration(s) to schema "${options.schema}" on ${redactUrl(url)}\n`,
        );
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
}
