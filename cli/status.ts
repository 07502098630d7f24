/** `posthog-outbox status`: what is waiting, what is failing, what died. Read-only. */
import { Command, Option } from 'commander';
import { checkDatabaseUrl, connect } from '../src/config.ts';
import { deadLettersByReason, identitiesStatus, outboxStatus, retryingRows, targetHealth } from '../src/sql.ts';
import { duration, oneLine, table } from './format.ts';
import { databaseUrlOption, integer, schemaOption } from './options.ts';

export interface Status {
  /** The PostHog target as the workers last reported it; null before any worker reported. */
  target: { failingSince: string | null; reason: string | null; updatedAt: string } | null;
  backlog: number;
  due: number;
  retrying: number;
  oldestAgeMs: number | null;
  nextRetryAt: string | null;
  deadLetters: number;
  /** Users, automation personas and organizations PostHog has been told about, and the oldest last identify. */
  profiles: { known: number; oldestSentAt: string | null };
  deadLettersByReason: { reason: string; count: number; lastDiedAt: string }[];
  retryingRows: { uuid: string; event: string; distinctId: string; attempts: number; nextAttemptAt: string; lastError: string | null }[];
}

export function statusCommand(): Command {
  return new Command('status')
    .description("Show the backlog, the oldest undelivered event's age, rows waiting to retry, and dead letters by reason.")
    .addOption(databaseUrlOption())
    .addOption(schemaOption())
    .addOption(new Option('--limit <n>', 'how many retrying rows to list').argParser(integer(0, 1000)).default(10))
    .option('--json', 'print one JSON object instead of text')
    .action(async (options: { databaseUrl?: string; schema: string; limit: number; json?: boolean }) => {
      const url = checkDatabaseUrl(options.databaseUrl);
      const sql = await connect(url, { max: 1 });
      try {
        const [summary] = await sql.unsafe(outboxStatus(options.schema));
        const reasons = await sql.unsafe(deadLettersByReason(options.schema));
        const retrying = await sql.unsafe(retryingRows(options.schema), [options.limit]);
        const [health] = await sql.unsafe(targetHealth(options.schema));
        const [profiles] = await sql.unsafe(identitiesStatus(options.schema));
        const status: Status = {
          target: health
            ? { failingSince: health.failing_since?.toISOString() ?? null, reason: health.reason, updatedAt: health.updated_at.toISOString() }
            : null,
          backlog: summary!.backlog,
          due: summary!.due,
          retrying: summary!.retrying,
          oldestAgeMs: summary!.oldest_age_ms === null ? null : Math.round(summary!.oldest_age_ms),
          nextRetryAt: summary!.next_retry_at?.toISOString() ?? null,
          deadLetters: reasons.reduce((n, r) => n + r.count, 0),
          profiles: { known: profiles!.known, oldestSentAt: profiles!.oldest_sent_at?.toISOString() ?? null },
          deadLettersByReason: reasons.map((r) => ({ reason: r.reason, count: r.count, lastDiedAt: r.last_died_at.toISOString() })),
          retryingRows: retrying.map((r) => ({
            uuid: r.uuid,
            event: r.event,
            distinctId: r.distinct_id,
            attempts: r.attempts,
            nextAttemptAt: r.next_attempt_at.toISOString(),
            lastError: r.last_error,
          })),
        };
        process.stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : render(status));
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
}

function render(s: Status): string {
  const now = Date.now();
  let out = '';
  out += `target        ${describeTarget(s.target, now)}\n`;
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
