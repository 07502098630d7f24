/**
 * `posthog-outbox backfill-profiles`: identify every user, automation persona and organization from the
 * application's own tables, for legacy profiles that produce no traffic. The backfill itself is
 * `backfillProfiles` of `posthog-outbox/ops` (src/ops/backfill.ts); this command reads the queries from its
 * flags or config file, draws the progress bar, prints each entity's outcome and stops on SIGINT/SIGTERM
 * after the current page.
 */
import { readFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { OutboxError } from '../src/errors/errors.ts';
import { BACKFILL_ENTITIES, type BackfillEntity, type BackfillOutcome, type BackfillProgress, backfillProfiles } from '../src/ops/backfill.ts';
import { withConnection } from '../src/ops/connection.ts';
import { refuseTransactionPooler } from '../src/connection/pooler.ts';
import { duration as formatDuration } from './format.ts';
import { databaseUrlOption, directUrlOption, duration, integer, schemaOption, sessionUrl } from './options.ts';
import { parseSetting, settingOption } from './settings.ts';

interface Options {
  databaseUrl?: string;
  directUrl?: string;
  schema: string;
  config?: string;
  usersQuery?: string;
  organizationsQuery?: string;
  automationsQuery?: string;
  batchSize: number;
  dryRun?: boolean;
  restart?: boolean;
  force?: boolean;
  identifyRefresh?: string;
  queryTimeout: number;
  progress: boolean;
}

/** The config file's queries, overridden by the flags; checked before anything connects, in flag terms. */
function queriesFrom(options: Options): Partial<Record<BackfillEntity, string>> {
  const file = options.config ? readConfig(options.config) : {};
  const flags: Record<BackfillEntity, string | undefined> = {
    users: options.usersQuery,
    organizations: options.organizationsQuery,
    automations: options.automationsQuery,
  };
  const queries: Partial<Record<BackfillEntity, string>> = {};
  for (const entity of BACKFILL_ENTITIES) {
    const query = flags[entity] ?? file[entity];
    if (query === undefined || query === null) continue;
    if (typeof query !== 'string' || query.trim() === '')
      throw new OutboxError('invalid', flags[entity] !== undefined ? `--${entity}-query` : `--config ${entity}`, 'must be a non-empty SQL query');
    queries[entity] = query;
  }
  if (Object.keys(queries).length === 0)
    throw new OutboxError(
      'required',
      '--config',
      'say where the profiles are: --config <file.json> or --users-query / --organizations-query / --automations-query',
    );
  return queries;
}

function readConfig(path: string): Partial<Record<BackfillEntity, unknown>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new OutboxError('invalid', '--config', `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch (error) {
    throw new OutboxError('invalid', '--config', `${path} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (file === null || typeof file !== 'object' || Array.isArray(file)) throw new OutboxError('invalid', '--config', 'must hold a JSON object');
  for (const key of Object.keys(file)) {
    if (!(BACKFILL_ENTITIES as readonly string[]).includes(key))
      throw new OutboxError('invalid', `--config ${key}`, `unknown key; use ${BACKFILL_ENTITIES.join(', ')}`);
  }
  return file;
}

/** One progress bar per entity on stderr (when `enabled`): count, rate, ETA. */
function progressBar(enabled: boolean) {
  let bar: SingleBar | undefined;
  let current: BackfillEntity | undefined;
  return {
    update(p: BackfillProgress): void {
      if (!enabled) return;
      if (p.entity !== current) {
        bar?.stop();
        current = p.entity;
        bar = new SingleBar({
          format: `${p.entity.padEnd(13)} [{bar}] {value}/{total} rows | {speed}/s | eta {eta_formatted}`,
          stream: process.stderr,
          hideCursor: true,
        });
        bar.start(p.total, 0, { speed: 0 });
        return;
      }
      bar?.update(p.rows, { speed: Math.round(p.rows / Math.max(0.001, p.elapsedMs / 1000)) });
    },
    stop(): void {
      bar?.stop();
      bar = undefined;
    },
  };
}

function describe(outcome: BackfillOutcome, dryRun: boolean): string {
  const verb = dryRun ? 'would enqueue' : 'enqueued';
  const resumed = outcome.resumedAfter !== null ? ` (resumed after id ${outcome.resumedAfter}; ${outcome.previously} enqueued before)` : '';
  return `${outcome.entity}: ${verb} ${outcome.enqueued} identify event(s), ${outcome.unchanged} unchanged and sent within the refresh interval (--force sends them), skipped ${outcome.skipped} with nothing to set${resumed} in ${formatDuration(outcome.ms)}\n`;
}

/** The library's refusal to resume a changed query, with this command's way to start over. */
function inFlagTerms(error: unknown): unknown {
  if (error instanceof OutboxError && error.code === 'cannot_resume')
    return new OutboxError(error.code, error.field, 'changed since the interrupted backfill, so it cannot be resumed: pass --restart to start over', {
      cause: error,
    });
  return error;
}

export function backfillCommand(): Command {
  return new Command('backfill-profiles')
    .description(
      'Identify every user, automation persona and organization from your own tables (legacy profiles that produce no traffic): pages through your queries by id and enqueues $identify / $groupidentify rows into the outbox. Resumable; --dry-run writes nothing.',
    )
    .addOption(databaseUrlOption())
    .addOption(directUrlOption())
    .addOption(schemaOption())
    .option(
      '--config <file>',
      'JSON file: { "users": "SELECT id, email, name FROM users", "organizations": "SELECT id, name, slug FROM orgs", "automations": "SELECT id, name, owner_user_id, organization_id FROM automations" }',
    )
    .option('--users-query <sql>', 'query returning id, email, name (overrides the config file)')
    .option('--organizations-query <sql>', 'query returning id, name, slug')
    .option('--automations-query <sql>', 'query returning id, name, owner_user_id, organization_id')
    .addOption(new Option('--batch-size <n>', 'rows per page (one transaction each)').argParser(integer(1, 10_000)).default(500))
    .option('--dry-run', 'count what would be enqueued; write nothing')
    .addOption(
      new Option('--query-timeout <duration>', 'longest any of your queries may run (each runs read only)')
        .argParser(duration(1_000, 86_400_000))
        .default(60_000, '60s'),
    )
    .option('--force', 'send every profile, even those PostHog was already told unchanged within the refresh interval')
    .addOption(
      settingOption('identifyRefreshMs', { description: "a profile sent unchanged less than this long ago is skipped (the worker's setting; 0: send all)" }),
    )
    .option('--restart', 'start a new pass even if an interrupted one could be resumed')
    .option('--no-progress', 'no progress bar (it is drawn only on a terminal anyway)')
    .action(runBackfill);
}

/** The worker's setting, when given (the library's default otherwise). */
function identifyRefreshMs(text: string | undefined): number | undefined {
  return text === undefined || text.trim() === '' ? undefined : (parseSetting('identifyRefreshMs', text) as number);
}

async function runBackfill(options: Options): Promise<void> {
  // A session-level advisory lock: a session of its own, not a transaction pooler.
  const { url, field } = sessionUrl(options);
  const queries = queriesFrom(options);
  const refreshMs = identifyRefreshMs(options.identifyRefresh);
  await refuseTransactionPooler(url, field);
  const bar = progressBar(options.progress && process.stderr.isTTY === true);
  const stop = new AbortController();
  const onSignal = () => {
    stop.abort();
    process.stderr.write('\nstopping after the current page; run the same command again to resume\n');
  };
  await withConnection(
    url,
    async (sql) => {
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await backfillProfiles(sql, {
          queries,
          schema: options.schema,
          batchSize: options.batchSize,
          dryRun: options.dryRun ?? false,
          restart: options.restart ?? false,
          force: options.force ?? false,
          identifyRefreshMs: refreshMs,
          queryTimeoutMs: options.queryTimeout,
          signal: stop.signal,
          onProgress: bar.update,
          onOutcome: (outcome) => {
            bar.stop();
            process.stdout.write(describe(outcome, options.dryRun ?? false));
          },
        });
        if (result.stopped) process.exitCode = 130;
      } catch (error) {
        throw inFlagTerms(error);
      } finally {
        bar.stop();
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      }
    },
    { max: 2 },
  );
}
