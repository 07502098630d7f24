/**
 * A drain run's ledger: every write that settles a claimed row, in its batch's transaction, and the run's
 * counters of each (`RunStats`, which the worker sums and the metrics count). A row ends a batch in one of
 * these ways: deleted once PostHog accepted it (re-identifying what it touched), deleted unsent (an identify
 * superseded by a newer one), scheduled again after a backoff, dead-lettered with the reason, or released
 * (left untouched: free again when the transaction commits, no attempt counted).
 */
import type postgres from 'postgres';
import * as q from '../src/sql/index.ts';
import { retryDelayMs } from './backoff.ts';
import type { DrainSettings } from './drain.ts';
import type { ProfileKind } from '../src/attribution/profiles.ts';
import { entityKey } from '../src/identify/events.ts';
import { deleteDeliveredAndIdentify } from '../src/identify/memory.ts';
import type { ClaimedRow, Pack } from './rows.ts';
import { type DeliveredEvent, RunIdentities, type Touch } from './run-identities.ts';

export interface RunStats {
  claimed: number;
  delivered: number;
  retried: number;
  deadLettered: number;
  /** `$identify` / `$groupidentify` events queued by this run. */
  identified: number;
  /** Identify rows deleted unsent because a newer identify of the same entity was queued since. */
  superseded: number;
  /** HTTP requests made to PostHog. */
  requests: number;
  durationMs: number;
  /** True when the run stopped with due rows left (time limit or shutdown), so another should follow. */
  more: boolean;
  /** Claimed rows given back unsent (the run had already failed, or the worker is stopping): no attempt counted. */
  released: number;
  /** Rows a rejection was pinned on but not confirmed as poison (the target may reject everything): kept, retried. */
  held: number;
  /** Batches judged to be rejected broadly by the target (every event, or too many): nothing dead-lettered. */
  rejectedBroadly: number;
  /** Set when PostHog failed in a passing way: how long the worker should wait before the next run. */
  pauseMs?: number;
  /** The run's last passing failure (redacted), e.g. `PostHog answered HTTP 503: ...`. */
  error?: string;
}

/** The counters of a run, which a worker sums over its runs (`totals`). */
export const RUN_COUNTERS = [
  'claimed',
  'delivered',
  'retried',
  'deadLettered',
  'released',
  'held',
  'rejectedBroadly',
  'identified',
  'superseded',
  'requests',
] as const;

export function zeroCounters(): Record<(typeof RUN_COUNTERS)[number], number> {
  return Object.fromEntries(RUN_COUNTERS.map((key) => [key, 0])) as Record<(typeof RUN_COUNTERS)[number], number>;
}

/** Each kind of entity an event touches, the claimed row's column holding its id, and its snapshot's field in a pack. */
const ENTITY_COLUMNS = [
  ['user', 'user_id', 'user_profile'],
  ['automation', 'automation_id', 'automation_profile'],
  ['organization', 'organization_id', 'organization_profile'],
] as const satisfies readonly (readonly [ProfileKind, keyof ClaimedRow, string])[];

/**
 * The snapshot of an entity a delivered event touched: the one its pack stored (none, `null`: the entity is not
 * re-identified from this event, as in SQL), or unknown (`undefined`) for a row of one event or one that is not an object.
 */
function snapshotOf(row: ClaimedRow, profile: (typeof ENTITY_COLUMNS)[number][2]): Touch['fields'] | null {
  if (row.source === null) return undefined;
  const fields = row.source[profile];
  if (fields === null || fields === undefined) return null;
  return typeof fields === 'object' && !Array.isArray(fields) ? (fields as Record<string, unknown>) : undefined;
}

/** A delivered event as the run's memory of identities sees it: the entities it touched, with their snapshots. */
function delivered(row: ClaimedRow): DeliveredEvent {
  const touches: Touch[] = [];
  for (const [kind, column, profile] of ENTITY_COLUMNS) {
    const id = row[column];
    const fields = id === null ? null : snapshotOf(row, profile);
    if (id !== null && fields !== null) touches.push({ kind, id, fields });
  }
  return { uuid: row.uuid, at: row.timestamp.getTime(), touches };
}

/** Nothing of the row's event for re-identification to read (`RunIdentities.settled` for each entity it touched). */
function settledBy(identities: RunIdentities, row: ClaimedRow): boolean {
  for (const [kind, column, profile] of ENTITY_COLUMNS) {
    const id = row[column];
    if (id === null) continue;
    const fields = snapshotOf(row, profile);
    if (fields !== null && !identities.settled(kind, id, fields)) return false;
  }
  return true;
}

/** The outbox row holding an event: its pack (while still packed) or its own. */
function rowOf(row: ClaimedRow): string {
  return row.pack && !row.pack.unpacked ? row.pack.uuid : row.uuid;
}

/** What a batch's transaction did that the run may only count on once it has committed. */
export type Committed = () => void;

export class Ledger {
  readonly stats: RunStats = {
    ...zeroCounters(),
    durationMs: 0,
    more: false,
  };
  /** What the run identified, and the snapshots it looked at: re-identification reads only what can change something. */
  private readonly identities = new RunIdentities();
  private readonly settings: Pick<DrainSettings, 'schema' | 'backoff' | 'identifyRefreshMs'>;

  constructor(settings: Pick<DrainSettings, 'schema' | 'backoff' | 'identifyRefreshMs'>) {
    this.settings = settings;
  }

  /**
   * Swaps the profile snapshots of claimed events for the equal ones the run remembers (`RunIdentities.canonical`):
   * once profiles are known, most events of a run repeat them, and their own copies then die young.
   */
  adoptSnapshots(rows: readonly ClaimedRow[]): void {
    for (const row of rows) {
      if (row.source === null) continue;
      const source = row.source as Record<string, unknown>;
      for (const [kind, column, profile] of ENTITY_COLUMNS) {
        const id = row[column];
        const fields = id === null ? null : snapshotOf(row, profile);
        if (id !== null && fields) source[profile] = this.identities.canonical(kind, id, fields);
      }
    }
  }

  /** A newer identify of the same entity is queued (or was sent): these older profiles must not land after it. */
  async deleteSuperseded(tx: postgres.TransactionSql, rows: readonly ClaimedRow[]): Promise<void> {
    if (rows.length === 0) return;
    await tx.unsafe(q.deleteRows(this.settings.schema), [rows.map((row) => row.uuid)], { prepare: true });
    this.stats.superseded += rows.length;
  }

  /**
   * Deletes the batch's delivered rows and re-identifies what their events touched, in one statement at the
   * end of the batch transaction (the identifies commit with the deletes): the `identities` rows it locks are
   * held only until the commit. An entity is identified at most once per run, and looked at again in the run only
   * when an event carries another snapshot of it (worker/run-identities.ts), so most batches of a run are simply deleted.
   * Returns what the run learns from it, to be called once `tx` has committed: a batch whose commit fails identified
   * nothing, and the run's other lanes must not leave its entities out meanwhile.
   */
  async deleteDelivered(tx: postgres.TransactionSql, accepted: readonly ClaimedRow[]): Promise<Committed | undefined> {
    if (accepted.length === 0) return undefined;
    const uuids = await this.deletable(tx, accepted);
    // Most batches of a run: every entity identified or repeating its snapshot, checked without building anything.
    const events = accepted.every((row) => settledBy(this.identities, row)) ? [] : accepted.map(delivered);
    const { read, exclude } = this.identities.toRead(events);
    if (read.length === 0) {
      await tx.unsafe(q.deleteRows(this.settings.schema), [uuids], { prepare: true });
      return undefined;
    }
    const { identified, enqueued } = await deleteDeliveredAndIdentify(tx, uuids, {
      schema: this.settings.schema,
      refreshMs: this.settings.identifyRefreshMs,
      exclude,
      read: [...new Set(read.map((i) => rowOf(accepted[i]!)))],
    });
    return () => {
      this.identities.learn(
        read.map((i) => events[i]!),
        identified.map((e) => entityKey(e.kind, e.id)),
      );
      this.stats.identified += enqueued;
    };
  }

  /**
   * The uuids whose deletion settles `accepted`: an event's own, or its pack's when every event of the pack is
   * among them. A pack delivered in part (or stored unlike `record()` writes it) is unpacked first.
   */
  private async deletable(tx: postgres.TransactionSql, accepted: readonly ClaimedRow[]): Promise<string[]> {
    const delivered = new Map<Pack, number>();
    for (const { pack } of accepted) if (pack && !pack.unpacked) delivered.set(pack, (delivered.get(pack) ?? 0) + 1);
    await this.unpack(
      tx,
      [...delivered].filter(([pack, count]) => !pack.clean || count !== pack.events.length).map(([pack]) => pack),
    );
    return [...new Set(accepted.map(rowOf))];
  }

  /** Unpacks `packs` (those not unpacked yet) into rows of one event each, so that their events can be settled apart. */
  private async unpack(tx: postgres.TransactionSql, packs: Iterable<Pack>): Promise<void> {
    const pending = [...new Set(packs)].filter((pack) => !pack.unpacked);
    if (pending.length === 0) return;
    const events = pending.flatMap((pack) => pack.events.map((event) => ({ ...event, pack: pack.uuid })));
    await tx.unsafe(q.unpack(this.settings.schema), [pending.map((pack) => pack.uuid), JSON.stringify(events)]);
    for (const pack of pending) pack.unpacked = true;
  }

  /** The packs `rows` came in. */
  private static packsOf(rows: readonly ClaimedRow[]): Pack[] {
    return rows.flatMap((row) => (row.pack ? [row.pack] : []));
  }

  /**
   * A target failure (or an unconfirmed rejection, `rejectedAt` set): the rows wait out their backoff (the
   * attempt is counted, but never leads to a dead letter) and the run ends: the worker pauses before the next.
   */
  async retry(
    tx: postgres.TransactionSql,
    rows: ClaimedRow[],
    error: string,
    retryAfterMs: number | undefined,
    rejectedAt: (Date | null)[] | null,
  ): Promise<void> {
    this.stats.error = error;
    const delays = await this.schedule(tx, rows, error, retryAfterMs, rejectedAt);
    this.stats.pauseMs = Math.max(this.stats.pauseMs ?? 0, rows.length > 0 ? Math.min(...delays) : this.settings.backoff.baseMs);
  }

  /**
   * Counts a failed attempt of `rows` and schedules each one's next after its backoff; `rejectedAt` (per row)
   * records when PostHog refused the row's event alone. Returns the delays.
   */
  async schedule(
    tx: postgres.TransactionSql,
    rows: ClaimedRow[],
    error: string,
    retryAfterMs: number | undefined,
    rejectedAt: (Date | null)[] | null,
  ): Promise<number[]> {
    const delays = rows.map((row) => retryDelayMs(row.attempts + 1, this.settings.backoff, retryAfterMs));
    if (rows.length > 0) {
      await this.unpack(tx, Ledger.packsOf(rows));
      const at = rows.map((_, i) => rejectedAt?.[i]?.toISOString() ?? null);
      await tx.unsafe(q.scheduleRetry(this.settings.schema), [rows.map((row) => row.uuid), delays, error, at as never]);
      this.stats.retried += rows.length;
    }
    return delays;
  }

  /** Moves rows to the dead-letter table: [row, reason, attempts made]. */
  async deadLetter(tx: postgres.TransactionSql, rows: [ClaimedRow, string, number][]): Promise<void> {
    if (rows.length === 0) return;
    await this.unpack(tx, Ledger.packsOf(rows.map(([row]) => row)));
    await tx.unsafe(q.deadLetter(this.settings.schema), [
      rows.map(([row]) => row.uuid),
      rows.map(([, reason]) => reason),
      rows.map(([, , attempts]) => attempts),
    ]);
    this.stats.deadLettered += rows.length;
  }
}
