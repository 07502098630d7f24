/**
 * `posthog-outbox forget`: for erasure requests. Deletes what the outbox holds about a user, an automation
 * persona or an organization: the queued events that touched them (each carries their profile snapshot),
 * the identify rows about them, their dead letters and their remembered profile, in one transaction.
 * PostHog's own copy is erased in PostHog (its person / group deletion); this command only covers what has
 * not left your database.
 */
import { Command, Option } from 'commander';
import { checkDatabaseUrl } from '../src/connection/config.ts';
import { OutboxError } from '../src/errors/errors.ts';
import { withConnection } from '../src/ops/connection.ts';
import { forget } from '../src/ops/forget.ts';
import { databaseUrlOption, schemaOption } from './options.ts';

const KINDS = [
  ['user', 'user'],
  ['automation', 'automation'],
  ['organization', 'organization'],
] as const;

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function forgetCommand(): Command {
  return new Command('forget')
    .description('Erasure: delete the queued events, identify rows, dead letters and remembered profile of a user, automation persona or organization.')
    .addOption(databaseUrlOption())
    .addOption(schemaOption())
    .addOption(new Option('--user <id>', 'a user id (repeatable)').argParser(collect))
    .addOption(new Option('--automation <id>', 'an automation id (repeatable)').argParser(collect))
    .addOption(new Option('--organization <id>', 'an organization id (repeatable)').argParser(collect))
    .option('--json', 'print one JSON object instead of text')
    .action(async (options: { databaseUrl?: string; schema: string; user?: string[]; automation?: string[]; organization?: string[]; json?: boolean }) => {
      const targets = KINDS.flatMap(([kind, flag]) => (options[flag] ?? []).map((id) => ({ kind, id })));
      if (targets.length === 0) throw new OutboxError('required', '--user', 'say whom to forget: --user <id>, --automation <id> or --organization <id>');
      for (const { kind, id } of targets) if (id.trim() === '') throw new OutboxError('invalid', `--${kind}`, 'must not be empty');
      const results = await withConnection(checkDatabaseUrl(options.databaseUrl), (sql) => forget(sql, targets, { schema: options.schema }));
      if (options.json) process.stdout.write(`${JSON.stringify({ forgotten: results })}\n`);
      else {
        for (const r of results) {
          process.stdout.write(
            `${r.kind} ${r.id}: deleted ${r.queued} queued event(s), ${r.deadLetters} dead letter(s)${r.profile ? ' and the remembered profile' : ', no remembered profile'}\n`,
          );
        }
      }
    });
}
