/** `posthog-outbox dead-letters list | retry | purge`: inspect and steer events PostHog would not take. */
import { createInterface } from 'node:readline/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import type postgres from 'postgres';
import { checkDatabaseUrl } from '../src/connection/config.ts';
import { OutboxError } from '../src/errors/errors.ts';
import { withConnection } from '../src/ops/connection.ts';
import { countDeadLettersBefore, listDeadLetters, purgeDeadLetters, retryAllDeadLetters, retryDeadLetters } from '../src/ops/dead-letters.ts';
import { oneLine, table } from './format.ts';
import { databaseUrlOption, integer, schemaOption } from './options.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuids(value: string, previous: string[] = []): string[] {
  const ids = value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  for (const id of ids) if (!UUID.test(id)) throw new InvalidArgumentError(`"${id}" is not a uuid.`);
  return [...previous, ...ids.map((id) => id.toLowerCase())];
}

/** An ISO 8601 date (`2026-11-01`) or date-time (`2026-11-01T12:00:00Z`). */
function isoDate(value: string): Date {
  const ok = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim());
  const date = new Date(value.trim());
  if (!ok || Number.isNaN(date.getTime())) throw new InvalidArgumentError(`"${value}" is not a date; use ISO 8601, e.g. 2026-11-01 or 2026-11-01T12:00:00Z.`);
  return date;
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export function deadLettersCommand(): Command {
  const command = new Command('dead-letters').description('List, retry or purge events that were given up on.');
  addList(command);
  addRetry(command);
  addPurge(command);
  return command;
}

/** `dead-letters list` */
function addList(parent: Command): void {
  parent
    .command('list')
    .description('List dead letters, newest first: uuid, event, distinct id, attempts, when, reason.')
    .addOption(databaseUrlOption())
    .addOption(schemaOption())
    .addOption(new Option('--limit <n>', 'how many to list').argParser(integer(1, 100_000)).default(50))
    .option('--json', 'print JSON lines, one dead letter per line')
    .action(async (options: { databaseUrl?: string; schema: string; limit: number; json?: boolean }) => {
      const rows = await withConnection(checkDatabaseUrl(options.databaseUrl), (sql) => listDeadLetters(sql, { schema: options.schema, limit: options.limit }));
      if (options.json) {
        for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
      } else if (rows.length === 0) {
        process.stdout.write('no dead letters\n');
      } else {
        process.stdout.write(
          table(
            ['uuid', 'event', 'distinct id', 'attempts', 'died at', 'reason'],
            rows.map((r) => [r.uuid, oneLine(r.event, 30), oneLine(r.distinctId, 30), String(r.attempts), r.diedAt, oneLine(r.reason, 80)]),
          ),
        );
      }
    });
}

/** `dead-letters retry --id <uuid...> | --all` */
function addRetry(parent: Command): void {
  parent
    .command('retry')
    .description('Move dead letters back into the outbox, attempts reset, due now (same uuid and timestamp).')
    .addOption(databaseUrlOption())
    .addOption(schemaOption())
    .addOption(new Option('--id <uuid...>', 'the dead letters to retry (repeatable, or comma-separated)').argParser(uuids).conflicts('all'))
    .option('--all', 'retry every dead letter, in batches of --batch-size (each its own transaction), with progress on stderr')
    .addOption(new Option('--batch-size <n>', 'dead letters moved per transaction with --all').argParser(integer(1, 100_000)).default(10_000))
    .action(async (options: { databaseUrl?: string; schema: string; id?: string[]; all?: boolean; batchSize: number }) => {
      if (!options.all && (!options.id || options.id.length === 0)) throw new OutboxError('required', 'ids', 'give --id <uuid> (one or more) or --all');
      const moved = await withConnection(checkDatabaseUrl(options.databaseUrl), (sql) =>
        // An unknown id is the OutboxError `ids`: cli/errors.ts names it --id.
        options.all ? retryAllSaying(sql, options) : retryDeadLetters(sql, options.id ?? [], { schema: options.schema }),
      );
      process.stdout.write(`moved ${moved} dead letter(s) back to the outbox\n`);
    });
}

/** Every dead letter back, saying how far it got on stderr every 2 s and at the end. */
async function retryAllSaying(sql: postgres.Sql, options: { schema: string; batchSize: number }): Promise<number> {
  let saidAt = Date.now();
  let last = { done: 0, total: 0, queued: 0 };
  const say = () => process.stderr.write(`retry --all: ${last.done} of ${last.total} dead letter(s) done, ${last.queued} queued again\n`);
  const queued = await retryAllDeadLetters(sql, {
    schema: options.schema,
    batchSize: options.batchSize,
    onProgress: (progress) => {
      last = progress;
      if (Date.now() - saidAt < 2_000) return;
      say();
      saidAt = Date.now();
    },
  });
  say();
  return queued;
}

/** `dead-letters purge --before <date>` */
function addPurge(parent: Command): void {
  parent
    .command('purge')
    .description('Delete dead letters that died before a date. Asks first, unless --yes.')
    .addOption(databaseUrlOption())
    .addOption(schemaOption())
    .requiredOption('--before <date>', 'delete those that died before this ISO 8601 date or date-time', isoDate)
    .option('--yes', 'do not ask for confirmation (needed when not on a terminal)')
    .action(async (options: { databaseUrl?: string; schema: string; before: Date; yes?: boolean }) => {
      const url = checkDatabaseUrl(options.databaseUrl);
      if (!options.yes && !process.stdin.isTTY) throw new OutboxError('required', '--yes', 'not on a terminal, so there is no one to ask: pass --yes to purge');
      const before = options.before.toISOString();
      await withConnection(url, async (sql) => {
        const count = await countDeadLettersBefore(sql, options.before, { schema: options.schema });
        if (count === 0) {
          process.stdout.write(`no dead letters died before ${before}\n`);
          return;
        }
        if (!options.yes && !(await confirm(`Delete ${count} dead letter(s) that died before ${before}?`))) {
          process.stdout.write('nothing deleted\n');
          return;
        }
        const deleted = await purgeDeadLetters(sql, options.before, { schema: options.schema });
        process.stdout.write(`deleted ${deleted} dead letter(s) that died before ${before}\n`);
      });
    });
}
