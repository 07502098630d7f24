/** `posthog-outbox migrate`: creates or upgrades the outbox schema. */
import { Command } from 'commander';
import { checkDatabaseUrl, connect, redactUrl } from '../src/config.ts';
import { migrateOutbox } from '../src/outbox/migrate.ts';
import { DEFAULT_SCHEMA } from '../src/outbox/schema.ts';
import { quoteSchema } from '../src/sql.ts';

export function migrateCommand(): Command {
  return new Command('migrate')
    .description('Create or upgrade the outbox tables. Idempotent; safe to run from several processes at once.')
    .option('--database-url <url>', 'PostgreSQL connection URL (default: $DATABASE_URL)')
    .option('--schema <name>', 'Postgres schema for the outbox tables', DEFAULT_SCHEMA)
    .action(async (options: { databaseUrl?: string; schema: string }) => {
      const url = checkDatabaseUrl(options.databaseUrl ?? process.env.DATABASE_URL);
      quoteSchema(options.schema);
      const sql = await connect(url, { max: 1 });
      try {
        const { applied } = await migrateOutbox(sql, { schema: options.schema });
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
