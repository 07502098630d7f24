/** `posthog-outbox status`: what is waiting, what is failing, what died. Read-only. */
import { Command, Option } from 'commander';
import { checkDatabaseUrl } from '../src/connection/config.ts';
import { withConnection } from '../src/ops/connection.ts';
import { type OutboxStatus as Status, readStatus } from '../src/ops/status.ts';
import { duration, oneLine, table } from './format.ts';
import { databaseUrlOption, integer, schemaOption } from './options.ts';

export function statusCommand(): Command {
  return new Command('status')
    .description("Show the backlog, the oldest undelivered event's age, rows waiting to retry, and dead letters by reason.")
    .addOption(databaseUrlOption())
    .addOption(schemaOption())
    .addOption(new Option('--limit <n>', 'how many retrying rows to list').argParser(integer(0, 1000)).default(10))
    .option('--json', 'print one JSON object instead of text')
    .action(async (options: { databaseUrl?: string; schema: string; limit: number; json?: boolean }) => {
      const status = await withConnection(checkDatabaseUrl(options.databaseUrl), (sql) => readStatus(sql, { schema: options.schema, limit: options.limit }));
      process.stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : render(status));
    });
}

function render(s: Status): string {
  const now = Date.now();
  let out = '';
  out += `target        ${describeTarget(s.target, now)}\n`;
  if (s.drainFailing !== null) {
    out += `drain passes    FAILING since ${s.drainFailing.since} (${duration(now - Date.parse(s.drainFailing.since))}): ${oneLine(s.drainFailing.reason, 300)}\n`;
  }
  out += `backlog       ${s.backlog} event(s): ${s.due} due now (those being sent included), ${s.retrying} waiting to retry\n`;
  out += `oldest        ${s.oldestAgeMs === null ? '-' : `${duration(s.oldestAgeMs)} old`}\n`;
  out += `next retry    ${s.nextRetryAt === null ? '-' : `in ${duration(Date.parse(s.nextRetryAt) - now)} (${s.nextRetryAt})`}\n`;
  out += `dead letters  ${s.deadLetters}\n`;
  out += `profiles      ${s.profiles.known} known to PostHog${s.profiles.oldestSentAt === null ? '' : `; the oldest last identified ${duration(now - Date.parse(s.profiles.oldestSentAt))} ago (${s.profiles.oldestSentAt})`}\n`;
  if (s.deadLettersByReason.length > 0) {
    out +=
      '\n' +
      table(
        ['count', 'last died', 'reason'],
        s.deadLettersByReason.map((r) => [String(r.count), r.lastDiedAt, oneLine(r.reason, 100)]),
      );
  }
  if (s.retryingRows.length > 0) {
    out += `\nwaiting to retry (first ${s.retryingRows.length}):\n`;
    out += table(
      ['uuid', 'event', 'attempts', 'next attempt', 'last error'],
      s.retryingRows.map((r) => [
        r.uuid,
        oneLine(r.event, 30),
        String(r.attempts),
        `in ${duration(Date.parse(r.nextAttemptAt) - now)}`,
        oneLine(r.lastError, 60),
      ]),
    );
  }
  return out;
}

function describeTarget(target: Status['target'], now: number): string {
  if (target === null) return 'no worker has reported yet';
  if (target.failingSince === null) return `PostHog accepting (as of ${target.updatedAt})`;
  return `FAILING since ${target.failingSince} (${duration(now - Date.parse(target.failingSince))}; last seen ${duration(now - Date.parse(target.updatedAt))} ago): ${oneLine(target.reason, 300)}`;
}
