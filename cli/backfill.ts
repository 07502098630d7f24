/**
 * `posthog-outbox backfill-profiles`: identify every user, automation persona and organization from the
 * application's own tables, for legacy profiles that produce no traffic. Pages through each query by id,
 * and enqueues `$identify` / `$groupidentify` rows into the outbox in the same transaction that records the
 * page as done, so delivery has the outbox's guarantees and an interrupted backfill resumes without
 * enqueueing a profile twice.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import type postgres from 'postgres';
import { identifyEvent, profileFromRow, type ProfileKind } from '../src/attribution/profiles.ts';
import { connect } from '../src/config.ts';
import { OutboxError } from '../src/errors.ts';
import { checkId } from '../src/limits.ts';
import {
  advanceBackfill,
  backfillState,
  countProfiles,
  finishBackfill,
  profileIdType,
  profilesPage,
  readOnlyQueries,
  startBackfill,
  tryLockBackfill,
  unlockBackfill,
} from '../src/sql/index.ts';
import { duration as formatDuration } from './format.ts';
import { refuseTransactionPooler } from '../src/pooler.ts';
import { databaseUrlOption, directUrlOption, duration, integer, schemaOption, sessionUrl } from './options.ts';
import type { TouchedEntity } from '../worker/identify.ts';
import { identifyTouched } from '../worker/identities.ts';
import { WORKER_DEFAULTS } from '../worker/settings.ts';

/** Config keys (and table names in `backfills`) -> profile kind. */
const ENTITIES = { users: 'user', organizations: 'organization', automations: 'automation' } as const satisfies Record<string, ProfileKind>;
type Entity = keyof typeof ENTITIES;

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
  identifyRefresh: number;
  queryTimeout: number;
  progress: boolean;
}

function queriesFrom(options: Options): [Entity, string][] {
  let file: Partial<Record<Entity, unknown>> = {};
  if (options.config) {
    let text: string;
    try {
      text = readFileSync(options.config, 'utf8');
    } catch (error) {
      throw new OutboxError('invalid', '--config', `cannot read ${options.config}: ${(error as Error).message}`, { cause: error });
    }
    try {
      file = JSON.parse(text);
    } catch (error) {
      throw new OutboxError('invalid', '--config', `${options.config} is not JSON: ${(error as Error).message}`, { cause: error });
    }
    if (file === null || typeof file !== 'object' || Array.isArray(file)) throw new OutboxError('invalid', '--config', 'must hold a JSON object');
    for (const key of Object.keys(file)) {
      if (!(key in ENTITIES)) throw new OutboxError('invalid', `--config ${key}`, `unknown key; use ${Object.keys(ENTITIES).join(', ')}`);
    }
  }
  const flags: Record<Entity, string | undefined> = {
    users: options.usersQuery,
    organizations: options.organizationsQuery,
    automations: options.automationsQuery,
  };
  const queries: [Entity, string][] = [];
  for (const entity of Object.keys(ENTITIES) as Entity[]) {
    const query = flags[entity] ?? file[entity];
    if (query === undefined || query === null) continue;
    if (typeof query !== 'string' || query.trim() === '')
      throw new OutboxError('invalid', flags[entity] !== undefined ? `--${entity}-query` : `--config ${entity}`, 'must be a non-empty SQL query');
    queries.push([entity, query.trim().replace(/;\s*$/, '')]);
  }
  if (queries.length === 0)
    throw new OutboxError(
      'required',
      '--config',
      'say where the profiles are: --config <file.json> or --users-query / --organizations-query / --automations-query',
    );
  return queries;
}

interface Outcome {
  entity: Entity;
  enqueued: number;
  /** Profiles PostHog was already told, unchanged, within the refresh interval: not sent again. */
  unchanged: number;
  skipped: number;
  resumedAfter: string | null;
  /** Enqueued by the interrupted run this one resumed. */
  previously: number;
  ms: number;
}

let stopRequested = false;

async function backfillEntity(sql: postgres.Sql, options: Options, entity: Entity, query: string): Promise<Outcome> {
  const kind = ENTITIES[entity];
  const started = Date.now();
  const hash = createHash('sha256').update(query).digest('hex');
  const fail = (message: string): never => {
    throw new OutboxError('invalid', `${entity} query`, message);
  };
  const [typeRow] = await readOnly(sql, options, (tx) => tx.unsafe<{ type: string }[]>(profileIdType(query), [1])).catch((error: Error) => fail(error.message));
  const { count: total } = (await readOnly(sql, options, (tx) => tx.unsafe<{ count: number }[]>(countProfiles(query), [true])))[0]!;
  if (!typeRow) return { entity, enqueued: 0, unchanged: 0, skipped: 0, resumedAfter: null, previously: 0, ms: Date.now() - started };
  const page = profilesPage(query, typeRow.type);

  let lastId: string | null = null;
  let done = 0;
  let resumedAfter: string | null = null;
  if (!options.dryRun) {
    const [state] = await sql.unsafe(backfillState(options.schema), [entity]);
    if (state && state.finished_at === null && !options.restart) {
      if (state.query_hash !== hash) {
        throw new OutboxError('invalid', `${entity} query`, 'changed since the interrupted backfill, so it cannot be resumed: pass --restart to start over');
      }
      lastId = state.last_id;
      done = state.enqueued;
      resumedAfter = lastId;
    } else {
      await sql.unsafe(startBackfill(options.schema), [entity, hash]);
    }
  }

  const bar = options.progress
    ? new SingleBar({ format: `${entity.padEnd(13)} [{bar}] {value}/{total} rows | {speed}/s | eta {eta_formatted}`, stream: process.stderr, hideCursor: true })
    : undefined;
  bar?.start(total, 0, { speed: 0 });
  let rows = 0;
  let enqueued = 0;
  let unchanged = 0;
  let skipped = 0;
  const tick = () => bar?.update(rows, { speed: Math.round(rows / Math.max(0.001, (Date.now() - started) / 1000)) });
  try {
    while (!stopRequested) {
      const batch = await readOnly(sql, options, (tx) => tx.unsafe<Record<string, unknown>[]>(page, [lastId, options.batchSize]));
      if (batch.length === 0) break;
      const now = new Date();
      const entities: TouchedEntity[] = [];
      for (const row of batch) {
        const { id, fields } = (() => {
          try {
            return profileFromRow(kind, row);
          } catch (error) {
            return fail((error as Error).message);
          }
        })();
        let sendable = false;
        try {
          checkId(id, 'id');
          sendable = identifyEvent(kind, id, fields, now) !== null;
        } catch {
          sendable = false; // an id PostHog cannot take (empty, over 200 characters): counted as skipped
        }
        if (sendable) entities.push({ kind, id, fields, at: now });
        else skipped++;
      }
      const position = String(batch.at(-1)!.id);
      // The identities memory decides what PostHog has not been told (or not within the refresh interval), in
      // the page's transaction; a dry run does the same and rolls it back.
      let sent = 0;
      await sql
        .begin(async (tx) => {
          sent = (await identifyTouched(tx, entities, { schema: options.schema, refreshMs: options.identifyRefresh, force: options.force ?? false })).enqueued;
          if (options.dryRun) throw DRY_RUN;
          await tx.unsafe(advanceBackfill(options.schema), [entity, position, sent]);
        })
        .catch((error: unknown) => {
          if (error !== DRY_RUN) throw error;
        });
      enqueued += sent;
      unchanged += entities.length - sent;
      lastId = position;
      rows += batch.length;
      tick();
    }
    if (!stopRequested && !options.dryRun) await sql.unsafe(finishBackfill(options.schema), [entity]);
  } finally {
    bar?.stop();
  }
  return { entity, enqueued, unchanged, skipped, resumedAfter, previously: done, ms: Date.now() - started };
}

/**
 * Runs the operator's query in a transaction of its own that cannot write (READ ONLY, so not even a function
 * it calls can) and cannot run away (`--query-timeout`).
 */
function readOnly<T>(sql: postgres.Sql, options: Options, body: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await tx.unsafe(readOnlyQueries(), [options.queryTimeout]);
    return body(tx);
  }) as Promise<T>;
}

/** Thrown to roll back a dry run's page. */
const DRY_RUN = Symbol('dry run');

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
      new Option('--identify-refresh <duration>', "a profile sent unchanged less than this long ago is skipped (the worker's setting; 0: send all)")
        .env('POSTHOG_OUTBOX_IDENTIFY_REFRESH')
        .argParser(duration(0, 365 * 86_400_000))
        .default(WORKER_DEFAULTS.identifyRefreshMs, '24h'),
    )
    .option('--restart', 'start a new pass even if an interrupted one could be resumed')
    .option('--no-progress', 'no progress bar (it is drawn only on a terminal anyway)')
    .action(async (options: Options) => {
      // A session-level advisory lock: a session of its own, not a transaction pooler.
      const { url, field } = sessionUrl(options);
      const queries = queriesFrom(options);
      await refuseTransactionPooler(url, field);
      options.progress = options.progress && process.stderr.isTTY === true;
      const sql = await connect(url, { max: 2 });
      const lock = await sql.reserve();
      const onSignal = () => {
        stopRequested = true;
        process.stderr.write('\nstopping after the current page; run the same command again to resume\n');
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const [{ locked }] = (await lock.unsafe(tryLockBackfill(), [options.schema])) as unknown as [{ locked: boolean }];
        if (!locked) throw new Error('another backfill-profiles is running on this schema; wait for it to finish');
        for (const [entity, query] of queries) {
          const outcome = await backfillEntity(sql, options, entity, query);
          const verb = options.dryRun ? 'would enqueue' : 'enqueued';
          const resumed = outcome.resumedAfter !== null ? ` (resumed after id ${outcome.resumedAfter}; ${outcome.previously} enqueued before)` : '';
          process.stdout.write(
            `${entity}: ${verb} ${outcome.enqueued} identify event(s), ${outcome.unchanged} unchanged and sent within the refresh interval (--force sends them), skipped ${outcome.skipped} with nothing to set${resumed} in ${formatDuration(outcome.ms)}\n`,
          );
          if (stopRequested) break;
        }
        if (stopRequested) process.exitCode = 130;
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        await lock.unsafe(unlockBackfill(), [options.schema]).catch(() => undefined);
        lock.release();
        await sql.end({ timeout: 5 });
      }
    });
}
