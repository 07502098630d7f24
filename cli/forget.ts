/**
 * `posthog-outbox forget`: for erasure requests. Deletes what the outbox holds about a user, an automation
 * persona or an organization: the queued events that touched them (each carries their profile snapshot),
 * the identify rows about them, their dead letters and their remembered profile, in one transaction.
 * PostHog's own copy is erased in PostHog (its person / group deletion); this command only covers what has
 * not left your database.
 */
import { Command, Option } from 'commander';
import { checkDatabaseUrl, connect } from '../src/config.ts';
import { OutboxError } from '../src/errors.ts';
import { forgetEntity } from '../src/sql.ts';
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
      const targets = KINDS.flatMap(([kind, flag]) => (options[flag] ?? []).map((id) => [kind, id] as const));
      if (targets.length === 0) throw new OutboxError('required', '--user', 'say whom to forget: --user <id>, --automation <id> or --organization <id>');
      for (const [kind, id] of targets) if (id.trim() === '') throw new OutboxError('invalid', `--${kind}`, 'must not be empty');
      const url = checkDatabaseUrl(options.databaseUrl);
      const sql = await connect(url, { max: 1 });
      try {
        const results = await sql.begin(async (tx) => {
          const out: { kind: string; id: string; queued: number; deadLetters: number; profile: boolean }[] = [];
          for (const [kind, id] of targets) {
            const [row] = await tx.unsafe<{ queued: number; dead: number; known: number }[]>(forgetEntity(options.schema, kind), [id]);
            out.push({ kind, id, queued: row!.queued, deadLetters: row!.dead, profile: row!.known > 0 });
          }
          return out;
        });
        if (options.json) process.stdout.write(`${JSON.stringify({ forgotten: results })}\n`);
        else {
          for (const r of results) {
            process.stdout.write(
              `${r.kind} ${r.id}: deleted ${r.queued} queued event(s), ${r.deadLetters} dead letter(s)${r.profile ? ' and the remembered profile' : ', no remembered profile'}\n`,
            );
          }
        }
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
}
