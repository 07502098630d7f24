/** `posthog-outbox dead-letters list | retry | purge`: inspect and steer events PostHog would not take. */
import { createInterface } from 'node:readline/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkDatabaseUrl, connect } from '../src/config.ts';
import { OutboxError } from '../src/errors.ts';
import type postgres from 'postgres';
import { countDeadLetters, countDeadLettersBefore, listDeadLetters, purgeDeadLetters, retryDeadLetters, retryDeadLettersBatch } from '../src/sql.ts';
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

/**
 * `retry --all`: bounded transactions of `batchSize` dead letters each, in uuid order, so a million dead
 * letters never become one statement holding a million row locks and a million-row WAL burst. Says how
 * far it got on stderr (every 2 s and at the end); interrupted, it can simply be run again.
 */
async function retryAll(sql: postgres.Sql, schema: string, batchSize: number): Promise<number> {
  const [{ total }] = (await sql.unsafe(countDeadLetters(schema))) as unknown as [{ total: number }];
  let last: string | null = null;
  let moved = 0;
  let taken = 0;
  let saidAt = Date.now();
  const say = () => process.stderr.write(`retry --all: ${taken} of ${total} dead letter(s) done, ${moved} queued again\n`);
  for (;;) {
    const [step] = (await sql.unsafe(retryDeadLettersBatch(schema), [batchSize, last])) as unknown as [{ taken: number; queued: number; last: string | null }];
    taken += step.taken;
    moved += step.queued;
    if (step.taken < batchSize || step.last === null) break;
    last = step.last;
    if (Date.now() - saidAt >= 2_000) {
      say();
      saidAt = Date.now();
    }
  }
  say();
  return moved;
}

export function deadLettersCommand(): Command {
  const command = new Command('dead-letters').description('List, retry or purge events that were given up on.');

  command
    .command('list')
    .description('List dead letters, newest first: uuid, event, distinct id, attempts, when, reason.')
    .addOption(databaseUrlOption())
    .addOption(schemaOption())
    .addOption(new Option('--limit <n>', 'how many to list').argParser(integer(1, 100_000)).default(50))
    .option('--json', 'print JSON lines, one dead letter per line')
    .action(async (options: { databaseUrl?: string; schema: string; limit: number; json?: boolean }) => {
      const sql = await connect(checkDatabaseUrl(options.databaseUrl), { max: 1 });
      try {
        const rows = await sql.unsafe(listDeadLetters(options.schema), [options.limit]);
        if (options.json) {
          for (const r of rows) {
            process.stdout.write(
              `${JSON.stringify({ uuid: r.uuid, event: r.event, distinctId: r.distinct_id, attempts: r.attempts, diedAt: r.died_at.toISOString(), reason: r.reason })}\n`,
            );
          }
        } else if (rows.length === 0) {
          process.stdout.write('no dead letters\n');
        } else {
          process.stdout.write(
            table(
              ['uuid', 'event', 'distinct id', 'attempts', 'died at', 'reason'],
              rows.map((r) => [r.uuid, oneLine(r.event, 30), oneLine(r.distinct_id, 30), String(r.attempts), r.died_at.toISOString(), oneLine(r.reason, 80)]),
            ),
          );
        }
      } finally {
        await sql.end({ timeout: 5 });
      }
    });

  command
    .command('retry')
    .description('Move dead letters back into the outbox, attempts reset, due now (same uuid and timestamp).')
    .addOption(databaseUrlOption())
    .addOption(schemaOption())
    .addOption(new Option('--id <uuid...>', 'the dead letters to retry (repeatable, or comma-separated)').argParser(uuids).conflicts('all'))
    .option('--all', 'retry every dead letter, in batches of --batch-size (each its own transaction), with progress on stderr')
    .addOption(new Option('--batch-size <n>', 'dead letters moved per transaction with --all').argParser(integer(1, 100_000)).default(10_000))
    .action(async (options: { databaseUrl?: string; schema: string; id?: string[]; all?: boolean; batchSize: number }) => {
      if (!options.all && (!options.id || options.id.length === 0)) throw new OutboxError('required', '--id', 'give --id <uuid> (one or more) or --all');
      const sql = await connect(checkDatabaseUrl(options.databaseUrl), { max: 1 });
      try {
        if (options.all) {
          const moved = await retryAll(sql, options.schema, options.batchSize);
          process.stdout.write(`moved ${moved} dead letter(s) back to the outbox\n`);
          return;
        }
        const wanted = [...new Set(options.id)];
        const moved = await sql.begin(async (tx) => {
          const rows = await tx.unsafe<{ uuid: string }[]>(retryDeadLetters(options.schema), [wanted]);
          const missing = wanted.filter((id) => !rows.some((r) => r.uuid === id));
          // all or nothing: an unknown id changes nothing
          if (missing.length > 0) throw new OutboxError('invalid', '--id', `no dead letter with uuid ${missing.join(', ')}; nothing was moved`);
          return rows.length;
        });
        process.stdout.write(`moved ${moved} dead letter(s) back to the outbox\n`);
      } finally {
        await sql.end({ timeout: 5 });
      }
    });

  command
    .command('purge')
    .description('Delete dead letters that died before a date. Asks first, unless --yes.')
    .addOption(databaseUrlOption())
    .addOption(schemaOption())
    .requiredOption('--before <date>', 'delete those that died before this ISO 8601 date or date-time', isoDate)
    .option('--yes', 'do not ask for confirmation (needed when not on a terminal)')
    .action(async (options: { databaseUrl?: string; schema: string; before: Date; yes?: boolean }) => {
      const url = checkDatabaseUrl(options.databaseUrl);
      if (!options.yes && !process.stdin.isTTY) throw new OutboxError('required', '--yes', 'not on a terminal, so there is no one to ask: pass --yes to purge');
      const sql = await connect(url, { max: 1 });
      try {
        const before = options.before.toISOString();
        const [{ count }] = (await sql.unsafe(countDeadLettersBefore(options.schema), [before])) as unknown as [{ count: number }];
        if (count === 0) {
          process.stdout.write(`no dead letters died before ${before}\n`);
          return;
        }
        if (!options.yes && !(await confirm(`Delete ${count} dead letter(s) that died before ${before}?`))) {
          process.stdout.write('nothing deleted\n');
          return;
        }
        const [{ count: deleted }] = (await sql.unsafe(purgeDeadLetters(options.schema), [before])) as unknown as [{ count: number }];
        process.stdout.write(`deleted ${deleted} dead letter(s) that died before ${before}\n`);
      } finally {
        await sql.end({ timeout: 5 });
      }
    });

  return command;
}
