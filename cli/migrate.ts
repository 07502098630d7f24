/** `posthog-outbox migrate`: `migrate()` (src/outbox/migrate.ts) on the session URL, saying what it did. */
import { Command } from 'commander';
import { redactUrl } from '../src/connection/config.ts';
import { migrate } from '../src/outbox/migrate.ts';
import { databaseUrlOption, directUrlOption, schemaOption, sessionUrl } from './options.ts';

export function migrateCommand(): Command {
  return new Command('migrate')
    .description("Create or upgrade the outbox tables and pg-boss's schema (with the drain queue). Idempotent; safe to run from several processes at once.")
    .addOption(databaseUrlOption())
    .addOption(directUrlOption())
    .addOption(schemaOption())
    .action(async (options: { databaseUrl?: string; directUrl?: string; schema: string }) => {
      const { url } = sessionUrl(options);
      const { applied } = await migrate({
        databaseUrl: url,
        schema: options.schema,
        onLockTimeout: ({ attempt, retryInMs, message }) =>
          process.stderr.write(
            `posthog-outbox: a table the migration changes is in use (${message}); rolled back so as not to block your application's writes, trying again in ${retryInMs / 1000} s (attempt ${attempt + 1})\n`,
          ),
      });
      process.stdout.write(
        applied.length === 0
          ? `outbox schema "${options.schema}" is up to date on ${redactUrl(url)}\n`
          : `applied ${applied.length} migration(s) to schema "${options.schema}" on ${redactUrl(url)}\n`,
      );
    });
}
