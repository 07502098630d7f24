/**
 * A drain pass's ledger: every write that settles a claimed row, in its batch's transaction, and the pass's
 * counters of each (`PassStats`, which the worker sums and the metrics count). A row ends a batch in one of
 * these ways: deleted once PostHog accepted it (re-identifying what it touched), deleted unsent (an identify
 * superseded by a newer one), scheduled again after a backoff, dead-lettered with the reason, or released
 * (left untouched: free again when the transaction commits, no attempt counted).
 */
import type postgres from 'postgres';
import { query } from '../../src/sql/statement.ts';
import * as q from './settle.sql.ts';
import { retryDelayMs } from './backoff.ts';
import type { DrainSettings } from '../settings/settings.ts';
import type { ProfileKind } from '../../src/attribution/profiles.ts';
import { entityKey } from '../../src/identify/events.ts';
import { deleteDeliveredAndIdentify } from '../../src/identify/memory.ts';
import type { ClaimedRow } from '../claim/rows.ts';
import { isPostgresConnectionLoss } from '../../src/connection/postgres-workaround.ts';
import { type DeliveredEvent, PassIdentities, type Touch } from './pass-identities.ts';
import type { PassStats } from '../types.ts';

/** The counters of a pass, which a worker sums over its passes (`totals`). */
export const PASS_COUNTERS = [
  'claimed',
  'delivered',
  'warned',
  'retried',
  'deadLettered',
  'released',
  'held',
  'rejectedBroadly',
  'identified',
  'superseded',
  'requests',
] as const;

export function zeroCounters(): Record<(typeof PASS_COUNTERS)[number], number> {
  return Object.fromEntries(PASS_COUNTERS.map((key) => [key, 0])) as Record<(typeof PASS_COUNTERS)[number], number>;
}

/** Each kind of entity an event touches: the claimed row's column holding its id, and the one holding its snapshot. */
const ENTITY_COLUMNS = [
  ['user', 'user_id', 'user_profile'],
  ['automation', 'automation_id', 'automation_profile'],
  ['organization', 'organization_id', 'organization_profile'],
] as const satisfies readonly (readonly [ProfileKind, keyof ClaimedRow, keyof ClaimedRow])[];

/** A delivered event as the pass's memory of identities sees it: the entities it touched, with their snapshots (none: not re-identified, as in SQL). */
function delivered(row: ClaimedRow): DeliveredEvent {
  const touches: Touch[] = [];
  for (const [kind, column, profile] of ENTITY_COLUMNS) {
    const id = row[column];
    const fields = row[profile];
    if (id !== null && fields !== null) touches.push({ kind, id, fields });
  }
  return { uuid: row.uuid, at: row.timestamp.getTime(), touches };
}

/** Nothing of the row's event for re-identification to read (`PassIdentities.settled` for each entity it touched). */
function settledBy(identities: PassIdentities, row: ClaimedRow): boolean {
  for (const [kind, column, profile] of ENTITY_COLUMNS) {
    const id = row[column];
    const fields = row[profile];
    if (id !== null && fields !== null && !identities.settled(kind, id, fields)) return false;
  }
  return true;
}

/** What a batch's transaction did that the pass may only count on once it has committed. */
export type Committed = () => void;

/** A write that settles rows of a batch once it has been sent (worker/settle/batch.ts queues them; `settle` runs them). */
export type Settlement = (tx: postgres.TransactionSql) => Promise<void>;

/** The counters a batch's settling writes move: put back when the writes are rolled back. */
const SETTLED_COUNTERS = ['retried', 'deadLettered'] as const;

export class Ledger {
  readonly stats: PassStats = {
    ...zeroCounters(),
    durationMs: 0,
    more: false,
  };
  /** What the pass identified, and the snapshots it looked at: re-identification reads only what can change something. */
  private readonly identities = new PassIdentities();
  private readonly settings: Pick<DrainSettings, 'schema' | 'backoff' | 'identifyRefreshMs'>;

  constructor(settings: Pick<DrainSettings, 'schema' | 'backoff' | 'identifyRefreshMs'>) {
    this.settings = settings;
  }

  /**
   * Swaps the profile snapshots of claimed events for the equal ones the pass remembers (`PassIdentities.canonical`):
   * once profiles are known, most events of a pass repeat them, and their own copies then die young.
   */
  adoptSnapshots(rows: ClaimedRow[]): void {
    for (const row of rows) {
      for (const [kind, column, profile] of ENTITY_COLUMNS) {
        const id = row[column];
        const fields = row[profile];
        if (id !== null && fields !== null) row[profile] = this.identities.canonical(kind, id, fields);
      }
    }
  }

  /** A newer identify of the same entity is queued (or was sent): these older profiles must not land after it. */
  async deleteSuperseded(tx: postgres.TransactionSql, rows: readonly ClaimedRow[]): Promise<void> {
    if (rows.length === 0) return;
    await query(tx, q.deleteRows(this.settings.schema), { uuids: rows.map((row) => row.uuid) }, { prepare: true });
    this.stats.superseded += rows.length;
  }

  /**
   * Settles a sent batch in `tx`: the queued writes (retries, dead letters), then the delivered rows `accepted`
   * deleted and what they touched re-identified, all in a savepoint. If PostgreSQL refuses any of it (a
   * statement timeout, a missing grant, a lock, a value), the savepoint is rolled back and only the accepted
   * rows are deleted, by the plainest statement there is: PostHog has them, and sending them again because
   * the database said no would duplicate them. The other rows are left untouched (free at the commit, no
   * attempt counted), the pass records the database's reason (`stats.settleError`) and ends, and the worker
   * backs off before the next (worker/scheduling/worker.ts). If even that delete fails, the error propagates: the
   * transaction is rolled back and the worker remembers the accepted uuids, so that it settles them unsent
   * when they are claimed again (`DrainPass.unsent`). Returns what the pass learns once `tx` commits.
   */
  async settle(tx: postgres.TransactionSql, writes: readonly Settlement[], accepted: readonly ClaimedRow[]): Promise<Committed | undefined> {
    const before = SETTLED_COUNTERS.map((key) => this.stats[key]);
    try {
      return await tx.savepoint(async (sp) => {
        for (const write of writes) await write(sp);
        return this.deleteDelivered(sp, accepted);
      });
    } catch (error) {
      if (isPostgresConnectionLoss(error)) throw error;
      for (const [i, key] of SETTLED_COUNTERS.entries()) this.stats[key] = before[i]!;
      this.stats.settleError = `settling a batch failed, ${accepted.length} delivered event(s) deleted without re-identification, the other rows left for a later pass: ${databaseReason(error)}`;
      if (accepted.length > 0) await query(tx, q.deleteRows(this.settings.schema), { uuids: accepted.map((row) => row.uuid) }, { prepare: true });
      return undefined;
    }
  }

  /**
   * Deletes the batch's delivered rows and re-identifies what their events touched, in one statement at the
   * end of the batch transaction (the identifies commit with the deletes): the `identities` rows it locks are
   * held only until the commit. An entity is identified at most once per pass, and looked at again in the pass only
   * when an event carries another snapshot of it (worker/settle/pass-identities.ts), so most batches of a pass are simply deleted.
   * Returns what the pass learns from it, to be called once `tx` has committed: a batch whose commit fails identified
   * nothing, and the pass's other lanes must not leave its entities out meanwhile.
   */
  private async deleteDelivered(tx: postgres.TransactionSql, accepted: readonly ClaimedRow[]): Promise<Committed | undefined> {
    if (accepted.length === 0) return undefined;
    const uuids = accepted.map((row) => row.uuid);
    // Most batches of a pass: every entity identified or repeating its snapshot, checked without building anything.
    const events = accepted.every((row) => settledBy(this.identities, row)) ? [] : accepted.map(delivered);
    const { read, exclude } = this.identities.toRead(events);
    if (read.length === 0) {
      await query(tx, q.deleteRows(this.settings.schema), { uuids }, { prepare: true });
      return undefined;
    }
    const { identified, enqueued } = await deleteDeliveredAndIdentify(tx, uuids, {
      schema: this.settings.schema,
      refreshMs: this.settings.identifyRefreshMs,
      exclude,
      read: read.map((i) => events[i]!.uuid),
    });
    return () => {
      this.stats.identified += enqueued;
      this.identities.learn(
        read.map((i) => events[i]!),
        identified.map((e) => entityKey(e.kind, e.id)),
      );
    };
  }

  /**
   * A target failure (or an unconfirmed rejection, `rejectedAt` set): the rows wait out their backoff (the
   * attempt is counted, but never leads to a dead letter) and the pass ends: the worker pauses before the next
   * (`stats.pauseMs`, `stats.error`): `scheduleRetry`, and a pause.
   */
  retryAndPause(rows: ClaimedRow[], error: string, retryAfterMs: number | undefined, rejectedAt: (Date | null)[] | null): Settlement {
    this.stats.error = error;
    const delays = this.delays(rows, retryAfterMs);
    this.stats.pauseMs = Math.max(this.stats.pauseMs ?? 0, rows.length > 0 ? Math.min(...delays) : this.settings.backoff.baseMs);
    return this.scheduleRetry(rows, error, delays, rejectedAt);
  }

  /** Each row's backoff before its next attempt. */
  delays(rows: readonly ClaimedRow[], retryAfterMs: number | undefined): number[] {
    return rows.map((row) => retryDelayMs(row.attempts + 1, this.settings.backoff, retryAfterMs));
  }

  /**
   * Counts a failed attempt of `rows` and schedules each one's next after its delay; `rejectedAt` (per row)
   * records when PostHog refused the row's event alone. The pass goes on (`retryAndPause` ends it).
   */
  scheduleRetry(rows: ClaimedRow[], error: string, delays: readonly number[], rejectedAt: (Date | null)[] | null): Settlement {
    return async (tx) => {
      if (rows.length === 0) return;
      await query(tx, q.scheduleRetry(this.settings.schema), {
        uuids: rows.map((row) => row.uuid),
        delaysMs: delays,
        error,
        rejectedAt: rows.map((_, i) => rejectedAt?.[i]?.toISOString() ?? null),
      });
      this.stats.retried += rows.length;
    };
  }

  /** Moves rows to the dead-letter table: [row, reason, attempts made]. */
  deadLetter(rows: [ClaimedRow, string, number][]): Settlement {
    return async (tx) => {
      if (rows.length === 0) return;
      await query(tx, q.deadLetter(this.settings.schema), {
        uuids: rows.map(([row]) => row.uuid),
        reasons: rows.map(([, reason]) => reason),
        attempts: rows.map(([, , attempts]) => attempts),
      });
      this.stats.deadLettered += rows.length;
    };
  }
}

/** PostgreSQL's reason for refusing a statement: its SQLSTATE and message. */
export function databaseReason(error: unknown): string {
  const e = error as { code?: string; message?: string };
  return e?.code ? `${e.code} ${e.message ?? ''}`.trim() : String(e?.message ?? error);
}
