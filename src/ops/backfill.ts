/**
 * Backfilling legacy profiles: identifies every user, automation persona and organization from the
 * application's own tables, for profiles that produce no traffic. Pages through each query by id, and
 * enqueues `$identify` / `$groupidentify` rows into the outbox in the same transaction that records the page
 * as done, so delivery has the outbox's guarantees and an interrupted backfill resumes without enqueueing a
 * profile twice. `posthog-outbox backfill-profiles` is a thin layer over it.
 */
import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import { DEFAULT_IDENTIFY_REFRESH_MS, type TouchedEntity } from '../identify/events.ts';
import { identifyTouched } from '../identify/memory.ts';
import { identifyEvent, type ProfileKind, profileFromRow } from '../attribution/profiles.ts';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import { OutboxError } from '../errors/errors.ts';
import { checkId } from '../record/limits.ts';
import { query as runStatement } from '../sql/statement.ts';
import * as q from './backfill.sql.ts';

/** Where the profiles are (also the row names of the `backfills` table) -> the profile kind. */
const KINDS = { users: 'user', organizations: 'organization', automations: 'automation' } as const satisfies Record<string, ProfileKind>;
export type BackfillEntity = keyof typeof KINDS;
/** The entities a backfill takes, in the order it takes them. */
export const BACKFILL_ENTITIES: readonly BackfillEntity[] = Object.keys(KINDS) as BackfillEntity[];

export interface BackfillOptions {
  /**
   * A SELECT per entity (at least one) returning `id` and the profile columns of its kind: users `email`,
   * `name`; organizations `name`, `slug`; automations `name`, `owner_user_id`, `organization_id`. Each runs
   * read only, as one statement, under `queryTimeoutMs`.
   */
  queries: Partial<Record<BackfillEntity, string>>;
  schema?: string;
  /** Rows per page, each page one transaction (default 500). */
  batchSize?: number;
  /** Count what would be enqueued: the same decisions, in transactions that are rolled back. */
  dryRun?: boolean;
  /** Start a new pass even if an interrupted one could be resumed (needed when a query changed). */
  restart?: boolean;
  /** Send every profile, even those PostHog was already told unchanged within `identifyRefreshMs`. */
  force?: boolean;
  /** A profile sent unchanged less than this long ago is skipped (default: the worker's, 24 h; 0 sends all). */
  identifyRefreshMs?: number;
  /** Longest any of the queries may run (default 60 s). */
  queryTimeoutMs?: number;
  /** Aborted: stops after the current page (`stopped` in the result); the next run resumes there. */
  signal?: AbortSignal;
  /** Heard when an entity's pass starts (`rows` 0) and after each page. */
  onProgress?: (progress: BackfillProgress) => void;
  /** Heard as each entity is done (or stopped), before the next one starts. */
  onOutcome?: (outcome: BackfillOutcome) => void;
}

export interface BackfillProgress {
  entity: BackfillEntity;
  /** Rows of the query read by this run so far, of `total`. */
  rows: number;
  total: number;
  enqueued: number;
  unchanged: number;
  skipped: number;
  /** Since this entity's pass started. */
  elapsedMs: number;
}

export interface BackfillOutcome {
  entity: BackfillEntity;
  /** Identify rows enqueued (or that would be, in a dry run). */
  enqueued: number;
  /** Profiles PostHog was already told, unchanged, within the refresh interval: not sent again. */
  unchanged: number;
  /** Rows with nothing to set, or an id PostHog cannot take. */
  skipped: number;
  /** The id the interrupted pass this run resumed had reached; null for a new pass. */
  resumedAfter: string | null;
  /** Enqueued by the interrupted pass this run resumed. */
  previously: number;
  ms: number;
}

export interface BackfillResult {
  outcomes: BackfillOutcome[];
  /** Stopped by `signal` before the end: run it again to resume. */
  stopped: boolean;
}

type Run = Required<Pick<BackfillOptions, 'schema' | 'batchSize' | 'dryRun' | 'restart' | 'force' | 'identifyRefreshMs' | 'queryTimeoutMs'>> &
  Pick<BackfillOptions, 'signal' | 'onProgress'>;

/**
 * Backfills the profiles `options.queries` return, one entity after the other. One backfill at a time per
 * schema: a second one throws. `sql` must give sessions of their own (a direct connection or a session-mode
 * pooler, not a transaction-mode one) and hold at least two connections: one keeps the backfill's lock, e.g.
 * `withConnection(url, (sql) => backfillProfiles(sql, options), { max: 2 })`. Bad options throw OutboxError
 * before any SQL; a query that fails, changed since an interrupted pass (without `restart`), or returns a
 * column its kind does not have throws OutboxError (field `<entity> query`; code `cannot_resume` for a changed query).
 */
export async function backfillProfiles(sql: postgres.Sql, options: BackfillOptions): Promise<BackfillResult> {
  const run = settings(options);
  const queries = checkQueries(options.queries);
  if (sql.options.max < 2) throw new OutboxError('invalid', 'sql', 'needs a client with at least 2 connections: one holds the backfill lock');
  const lock = await sql.reserve();
  try {
    const [{ locked } = { locked: false }] = await runStatement(lock, q.tryLockBackfill(), { schema: run.schema });
    if (!locked) throw new Error('another backfill-profiles is running on this schema; wait for it to finish');
    const outcomes: BackfillOutcome[] = [];
    for (const [entity, query] of queries) {
      const outcome = await backfillEntity(sql, run, entity, query);
      outcomes.push(outcome);
      options.onOutcome?.(outcome);
      if (stopped(run)) break;
    }
    return { outcomes, stopped: stopped(run) };
  } finally {
    await runStatement(lock, q.unlockBackfill(), { schema: run.schema }).catch(() => undefined);
    lock.release();
  }
}

function settings(options: BackfillOptions): Run {
  const whole = (value: number, field: string, min: number): number => {
    if (!Number.isSafeInteger(value) || value < min) throw new OutboxError('invalid', field, `must be a whole number of at least ${min}, got ${value}`);
    return value;
  };
  return {
    schema: options.schema ?? DEFAULT_SCHEMA,
    batchSize: whole(options.batchSize ?? 500, 'batchSize', 1),
    dryRun: options.dryRun ?? false,
    restart: options.restart ?? false,
    force: options.force ?? false,
    identifyRefreshMs: whole(options.identifyRefreshMs ?? DEFAULT_IDENTIFY_REFRESH_MS, 'identifyRefreshMs', 0),
    queryTimeoutMs: whole(options.queryTimeoutMs ?? 60_000, 'queryTimeoutMs', 1),
    signal: options.signal,
    onProgress: options.onProgress,
  };
}

/** The queries in backfill order, trimmed, a trailing `;` dropped. */
function checkQueries(queries: BackfillOptions['queries'] | undefined): [BackfillEntity, string][] {
  const given: Record<string, unknown> = queries ?? {};
  for (const key of Object.keys(given)) {
    if (!(key in KINDS)) throw new OutboxError('invalid', `queries.${key}`, `unknown key; use ${BACKFILL_ENTITIES.join(', ')}`);
  }
  const out: [BackfillEntity, string][] = [];
  for (const entity of BACKFILL_ENTITIES) {
    const query = given[entity];
    if (query === undefined || query === null) continue;
    if (typeof query !== 'string' || query.trim() === '') throw new OutboxError('invalid', `queries.${entity}`, 'must be a non-empty SQL query');
    out.push([entity, query.trim().replace(/;\s*$/, '')]);
  }
  if (out.length === 0) throw new OutboxError('required', 'queries', `say where the profiles are: a query for ${BACKFILL_ENTITIES.join(', ')}`);
  return out;
}

const stopped = (run: Run): boolean => run.signal?.aborted === true;

async function backfillEntity(sql: postgres.Sql, run: Run, entity: BackfillEntity, query: string): Promise<BackfillOutcome> {
  const started = Date.now();
  const fail = (message: string): never => {
    throw new OutboxError('invalid', `${entity} query`, message);
  };
  const [typeRow] = await readOnly(sql, run, (tx) => runStatement(tx, q.profileIdType(query), { limit: 1 })).catch((error: Error) => fail(error.message));
  const { count: total } = (await readOnly(sql, run, (tx) => runStatement(tx, q.countProfiles(query), { all: true })))[0]!;
  if (!typeRow) return { entity, enqueued: 0, unchanged: 0, skipped: 0, resumedAfter: null, previously: 0, ms: Date.now() - started };
  const page = q.profilesPage(query, typeRow.type);
  const { resumedAfter, previously } = await resumePoint(sql, run, entity, query);

  const counts = { rows: 0, enqueued: 0, unchanged: 0, skipped: 0 };
  const progress = () => run.onProgress?.({ entity, total, ...counts, elapsedMs: Date.now() - started });
  progress();
  let lastId = resumedAfter;
  while (!stopped(run)) {
    const batch = await readOnly(sql, run, (tx) => runStatement(tx, page, { after: lastId, limit: run.batchSize }));
    if (batch.length === 0) break;
    const { entities, skipped } = profilesOf(KINDS[entity], batch, fail);
    lastId = String(batch.at(-1)!.id);
    const sent = await enqueuePage(sql, run, entity, entities, lastId);
    counts.rows += batch.length;
    counts.enqueued += sent;
    counts.unchanged += entities.length - sent;
    counts.skipped += skipped;
    progress();
  }
  if (!stopped(run) && !run.dryRun) await runStatement(sql, q.finishBackfill(run.schema), { entity });
  const { enqueued, unchanged, skipped } = counts;
  return { entity, enqueued, unchanged, skipped, resumedAfter, previously, ms: Date.now() - started };
}

/**
 * Where this run starts: after the interrupted pass's last page when there is one with the same query (and no
 * `restart`), else at a new pass (recorded; a dry run records nothing and starts at the beginning).
 */
async function resumePoint(sql: postgres.Sql, run: Run, entity: BackfillEntity, query: string): Promise<{ resumedAfter: string | null; previously: number }> {
  if (run.dryRun) return { resumedAfter: null, previously: 0 };
  const hash = createHash('sha256').update(query).digest('hex');
  const [state] = await runStatement(sql, q.backfillState(run.schema), { entity });
  if (state && state.finished_at === null && !run.restart) {
    if (state.query_hash !== hash) {
      throw new OutboxError(
        'cannot_resume',
        `${entity} query`,
        'changed since the interrupted backfill, so it cannot be resumed: pass restart: true to start over',
      );
    }
    return { resumedAfter: state.last_id, previously: state.enqueued };
  }
  await runStatement(sql, q.startBackfill(run.schema), { entity, queryHash: hash });
  return { resumedAfter: null, previously: 0 };
}

/** A page's rows as profiles to identify; a row with nothing to set, or an id PostHog cannot take, is skipped. */
function profilesOf(
  kind: ProfileKind,
  batch: readonly Record<string, unknown>[],
  fail: (message: string) => never,
): { entities: TouchedEntity[]; skipped: number } {
  const now = new Date();
  const entities: TouchedEntity[] = [];
  let skipped = 0;
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
  return { entities, skipped };
}

/**
 * Enqueues a page's identifies and records its position `position`, in one transaction; returns how many
 * were enqueued. The identities memory decides what PostHog has not been told (or not within the refresh
 * interval), in the page's transaction; a dry run does the same and rolls it back.
 */
async function enqueuePage(sql: postgres.Sql, run: Run, entity: BackfillEntity, entities: TouchedEntity[], position: string): Promise<number> {
  let sent = 0;
  await sql
    .begin(async (tx) => {
      sent = (await identifyTouched(tx, entities, { schema: run.schema, refreshMs: run.identifyRefreshMs, force: run.force })).enqueued;
      if (run.dryRun) throw DRY_RUN;
      await runStatement(tx, q.advanceBackfill(run.schema), { entity, lastId: position, sent });
    })
    .catch((error: unknown) => {
      if (error !== DRY_RUN) throw error;
    });
  return sent;
}

/** Thrown to roll back a dry run's page. */
const DRY_RUN = Symbol('dry run');

/**
 * Runs an operator query in a transaction of its own that cannot write tables (READ ONLY: no INSERT, UPDATE,
 * DELETE or DDL, also not in a function it calls) and cannot run away (`queryTimeoutMs`). READ ONLY does not
 * stop a function's effects outside the tables (dblink_exec, pg_terminate_backend, advisory locks, ...): the
 * role the backfill runs as bounds those (the backfill role in docs/hosted-postgres.md).
 */
function readOnly<T>(sql: postgres.Sql, run: Run, body: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await runStatement(tx, q.readOnlyQueries(), { timeoutMs: run.queryTimeoutMs });
    return body(tx);
  }) as Promise<T>;
}
