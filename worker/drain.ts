/**
 * One drain run: claim due rows in batches, send each batch, settle every row (deleted once PostHog accepted
 * it, retried later, or dead-lettered with the reason). In the same batch transaction, the users, automation
 * personas and organizations its delivered events touched are re-identified when the `identities` memory
 * says PostHog must hear of them (new, changed, or not refreshed for the interval; worker/identities.ts):
 * the `$identify` / `$groupidentify` rows are written to the outbox and delivered with the same guarantees.
 *
 * What may dead-letter a row (worker/outcome.ts has the rules): a rejection that bisection pins on its event
 * alone twice, with other events accepted in between; a row stored corrupt; a row older than the maximum
 * age. A batch whose events are all rejected, or too many of them, is a target that rejects broadly (a
 * proxy mangling bodies, an API change): bisection stops early, nothing is dead-lettered, and the run ends
 * as a target failure.
 *
 * A target failure (outage, 429, timeout, redirect, not PostHog, rejecting broadly) ends the run: the failed
 * rows wait out their backoff and the worker pauses before the next run, so an outage costs a bounded number of requests, not one per
 * batch of backlog. From the first such failure on, no lane claims or sends anything more in this run:
 * a batch a lane had claimed but not sent yet (or the rest of a bisection) is released, its attempt not
 * counted. A run that follows a failed one is a probe: one lane sends, and the others join only once
 * PostHog has accepted a batch, so while PostHog is down each backoff step costs one request.
 *
 * Several lanes (`concurrency`) claim and send side by side, so one batch is serialised and compressed
 * while another waits on the network or the database. Each batch lives in a transaction of its own: the
 * claim locks its rows with FOR UPDATE SKIP LOCKED (lanes and other workers skip them), and the rows are
 * settled and the locks released by the same transaction. Claimed rows that are not sent are given back by
 * committing without touching them. The lease is the transaction's `idle_in_transaction_session_timeout`:
 * a worker that hangs mid-batch cannot hold its rows longer than that (one that dies frees them at once).
 */
import type postgres from 'postgres';
import { OutboxError } from '../src/errors.ts';
import { redactForStorage } from '../src/redact.ts';
import { checkEventShape } from '../src/outbox/validate.ts';
import * as q from '../src/sql/index.ts';
import { retryDelayMs, type BackoffPolicy } from './backoff.ts';
import { entityKey } from './identify.ts';
import { deleteDeliveredAndIdentify } from './identities.ts';
import { decide, judgePinned, rejectsBroadly, type BisectionState } from './outcome.ts';
import { sendBatch, type PostHogTarget, type WireEvent } from './sender.ts';

export interface DrainSettings {
  schema: string;
  target: PostHogTarget;
  /** Rows per claim and per PostHog request. */
  batchSize: number;
  /** Batches in flight at once in this process. */
  concurrency: number;
  /** A row older than this (since it was recorded) is dead-lettered when claimed instead of being sent. */
  maxAgeMs: number;
  /** How long a batch's transaction may sit idle (a request out) before PostgreSQL ends it and frees its rows. */
  leaseSeconds: number;
  /** A run stops claiming after this long; the worker starts another if work is left. */
  maxRunMs: number;
  /** An unchanged profile is identified again once its last identify is this old (0: once per run). */
  identifyRefreshMs: number;
  backoff: BackoffPolicy;
  /** Called after each PostHog request with its duration and outcome (`accepted`, the HTTP status, `network`). */
  observeRequest?: (seconds: number, outcome: string) => void;
}

/** What a worker remembers about its target across runs. */
export interface TargetMemory {
  /** When one of this worker's requests was last accepted (null: not since it started). */
  lastAcceptedAt: Date | null;
}

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

interface ClaimedRow {
  uuid: string;
  event: string;
  distinct_id: string;
  properties: Record<string, unknown>;
  groups: Record<string, string>;
  timestamp: Date;
  attempts: number;
  rejected_at: Date | null;
  /** Older than the maximum age: dead-lettered, not sent. */
  expired: boolean;
  /** An identify row whose entity was identified again since: deleted, not sent. */
  superseded: boolean;
}

/**
 * Checks what is sent of a stored row as `record()` checks an event (its properties are JSON already: they
 * come from jsonb): a row corrupted in the table is dead-lettered, not sent. The profile snapshots are not
 * read here: they only feed re-identification, in SQL.
 */
function toWire(row: ClaimedRow): WireEvent {
  const event = checkEventShape(
    { event: row.event, distinctId: row.distinct_id, properties: row.properties, groups: row.groups, timestamp: row.timestamp, profiles: {} },
    'row',
  );
  return { uuid: row.uuid, event: event.event, distinctId: event.distinctId, properties: event.properties, groups: event.groups, timestamp: row.timestamp };
}

export class DrainRun {
  readonly stats: RunStats = {
    ...zeroCounters(),
    durationMs: 0,
    more: false,
  };
  /** Entities identified by this run: at most once per entity per run. */
  private readonly identifiedThisRun = new Set<string>();
  private readonly sql: postgres.Sql;
  private readonly settings: DrainSettings;
  private readonly signal: AbortSignal | undefined;
  private readonly probe: boolean;
  private readonly memory: TargetMemory;
  private onBacklog: (() => void) | undefined;
  private claimedFull = false;
  /** A request of this run met a target failure (set before its batch is settled): nothing more is sent. */
  private targetFailing = false;
  private acceptedOne = false;
  /** Resolved when PostHog first accepts a batch in this run (a probe run then opens its other lanes). */
  private accepted!: () => void;
  private readonly firstAccepted = new Promise<void>((resolve) => (this.accepted = resolve));

  /**
   * `probe`: the previous run ended on a passing PostHog failure, so this one sends one batch at a time
   * until PostHog accepts one. `onBacklog`: called once, as soon as a claim has come back full (there is a
   * backlog) and PostHog has accepted a batch (it is up), so other workers may join in.
   */
  constructor(
    sql: postgres.Sql,
    settings: DrainSettings,
    signal?: AbortSignal,
    options: { probe?: boolean; onBacklog?: () => void; memory?: TargetMemory } = {},
  ) {
    this.sql = sql;
    this.settings = settings;
    this.signal = signal;
    this.probe = options.probe ?? false;
    this.memory = options.memory ?? { lastAcceptedAt: null };
    this.onBacklog = options.onBacklog;
  }

  private noteBacklog(): void {
    if (!this.onBacklog || !this.claimedFull || !this.acceptedOne) return;
    const call = this.onBacklog;
    this.onBacklog = undefined;
    call();
  }

  /** The run met a target failure (settled or not yet): nothing more is claimed or sent. */
  private get failed(): boolean {
    return this.stats.pauseMs !== undefined || this.targetFailing;
  }

  async run(): Promise<RunStats> {
    const started = Date.now();
    const deadline = started + this.settings.maxRunMs;
    const others = () => Array.from({ length: this.settings.concurrency - 1 }, () => this.lane(deadline));
    if (!this.probe) {
      await Promise.all([this.lane(deadline), ...others()]);
    } else {
      const first = this.lane(deadline);
      const open = await Promise.race([first.then(() => false), this.firstAccepted.then(() => true)]);
      await Promise.all([first, ...(open && !this.failed ? others() : [])]);
    }
    this.stats.durationMs = Date.now() - started;
    return this.stats;
  }

  private async lane(deadline: number): Promise<void> {
    const { schema, batchSize, leaseSeconds } = this.settings;
    for (;;) {
      if (this.failed) return;
      if (this.signal?.aborted || Date.now() >= deadline) {
        this.stats.more = true;
        return;
      }
      const claimed = await this.sql.begin(async (tx) => {
        // pipelined: one round trip
        const [, rows] = await Promise.all([
          tx.unsafe(q.setLease(), [leaseSeconds * 1000], { prepare: true }),
          tx.unsafe<ClaimedRow[]>(q.claimBatch(schema), [batchSize, this.settings.maxAgeMs], { prepare: true }),
        ]);
        if (rows.length === batchSize) {
          this.claimedFull = true;
          this.noteBacklog();
        }
        this.stats.claimed += rows.length;
        await this.settle(tx, rows);
        return rows.length;
      });
      if (claimed < batchSize) return;
    }
  }

  private async settle(tx: postgres.TransactionSql, rows: ClaimedRow[]): Promise<void> {
    const sendable: [ClaimedRow, WireEvent][] = [];
    const unsendable: [ClaimedRow, string, number][] = [];
    const superseded = rows.filter((row) => row.superseded);
    if (superseded.length > 0) {
      // A newer identify of the same entity is queued (or was sent): this older profile must not land after it.
      await tx.unsafe(q.deleteSuperseded(this.settings.schema), [superseded.map((row) => row.uuid)], { prepare: true });
      this.stats.superseded += superseded.length;
    }
    for (const row of rows) {
      if (row.superseded) continue;
      if (row.expired) {
        unsendable.push([row, `older than the maximum age (${describeAge(this.settings.maxAgeMs)}, --max-age) when it was claimed: not sent`, row.attempts]);
        continue;
      }
      try {
        sendable.push([row, toWire(row)]);
      } catch (error) {
        if (!(error instanceof OutboxError)) throw error;
        unsendable.push([row, `invalid stored event, not sent: ${error.message}`, row.attempts]);
      }
    }
    await this.deadLetter(tx, unsendable);
    if (sendable.length === 0) return;
    const trial: Trial = { size: sendable.length, state: { accepted: 0, rejectedRequests: 0, pinned: 0 }, broad: false, pinned: [], accepted: [] };
    await this.deliver(tx, sendable, trial);
    await this.judge(tx, trial);
    await this.settleDelivered(tx, trial.accepted);
  }

  /** Dead-letters the events a rejection was pinned on if they are confirmed poison; keeps the others. */
  private async judge(tx: postgres.TransactionSql, trial: Trial): Promise<void> {
    const broad = trial.broad || rejectsBroadly(trial.size, trial.state);
    if (trial.pinned.length === 0 && !broad) return;
    const poison: [ClaimedRow, string, number][] = [];
    const kept: [ClaimedRow, string, Date][] = [];
    for (const [row, reason, at] of trial.pinned) {
      const verdict = judgePinned({ broad, rejectedAt: row.rejected_at, lastAcceptedAt: this.memory.lastAcceptedAt });
      if (verdict === 'poison') poison.push([row, this.redact(reason), row.attempts + 1]);
      else kept.push([row, reason, at]);
    }
    await this.deadLetter(tx, poison);
    if (broad) this.stats.rejectedBroadly++;
    if (kept.length === 0 && !broad) return;
    const firstReason = kept[0]?.[1] ?? trial.pinned[0]?.[1] ?? 'every request refused';
    const rejectedAt = kept.map(([, , at]) => at);
    if (!broad && trial.state.accepted > 0) {
      // PostHog took the rest of the batch: most likely poison, confirmed (and dead-lettered) if it is refused
      // again alone after its backoff. Not a target failure: the run goes on.
      const error = this.redact(`PostHog refused the event alone once (dead-lettered if refused again): ${firstReason}`);
      await this.schedule(
        tx,
        kept.map(([row]) => row),
        error,
        undefined,
        rejectedAt,
      );
      this.stats.held += kept.length;
      return;
    }
    const error = this.redact(
      broad
        ? `PostHog rejects broadly: ${trial.state.pinned} of the ${trial.state.pinned + trial.state.accepted} event(s) it answered in a batch of ${trial.size} were refused (${trial.state.rejectedRequests} requests refused): not dead-lettered, kept and retried: ${firstReason}`
        : `PostHog refused the event, with no other event accepted since to confirm it is the event's fault: kept and retried: ${firstReason}`,
    );
    await this.retry(
      tx,
      kept.map(([row]) => row),
      error,
      undefined,
      rejectedAt,
    );
    this.stats.held += kept.length;
  }

  private redact(text: string): string {
    // PostHog's answers may quote the events (emails) or the request (the key): never stored or logged as is
    return redactForStorage(text, [this.settings.target.apiKey]);
  }

  private async deliver(tx: postgres.TransactionSql, batch: [ClaimedRow, WireEvent][], trial: Trial): Promise<void> {
    if (batch.length === 0) return;
    if (!trial.broad && rejectsBroadly(trial.size, trial.state)) trial.broad = true;
    if (this.failed || this.signal?.aborted || trial.broad) {
      // Another lane (or the first half of this bisection) met a target failure, the worker is stopping, or the
      // batch is being rejected broadly: left untouched, these rows are free again when the transaction commits.
      this.stats.released += batch.length;
      return;
    }
    const report = await sendBatch(
      this.settings.target,
      batch.map(([, wire]) => wire),
      { stop: () => this.failed || (this.signal?.aborted ?? false), onTargetFailure: () => (this.targetFailing = true) },
    );
    this.stats.requests += report.requests.length;
    for (const r of report.requests) {
      this.settings.observeRequest?.(
        r.seconds,
        r.verdict.kind === 'accepted' ? 'accepted' : r.verdict.status !== undefined ? String(r.verdict.status) : 'network',
      );
    }
    const byUuid = new Map(batch.map((entry) => [entry[0].uuid, entry]));
    const pick = (uuids: readonly string[]) => uuids.map((u) => byUuid.get(u)!);

    if (report.accepted.length > 0) {
      this.delivered(pick(report.accepted), trial);
      trial.state.accepted += report.accepted.length;
    }
    if (report.failed) {
      const failed = pick(report.failed.uuids);
      const decision = decide(report.failed.verdict, failed.length);
      switch (decision.action) {
        case 'delivered':
          break; // a failed request is never accepted
        case 'bisect': {
          trial.state.rejectedRequests++;
          const middle = Math.ceil(failed.length / 2);
          await this.deliver(tx, failed.slice(0, middle), trial);
          await this.deliver(tx, failed.slice(middle), trial);
          break;
        }
        case 'pinned':
          trial.state.rejectedRequests++;
          trial.state.pinned += failed.length;
          for (const [row] of failed) trial.pinned.push([row, decision.reason, new Date()]);
          break;
        case 'retry': {
          const error = this.redact(decision.error);
          await this.retry(
            tx,
            failed.map(([row]) => row),
            error,
            decision.retryAfterMs,
            null,
          );
          break;
        }
      }
    }
    // Never on the wire (posthog-node stopped at a failure after splitting): sent now, or released if the run failed.
    await this.deliver(tx, pick(report.unsent), trial);
  }

  private delivered(batch: [ClaimedRow, WireEvent][], trial: Trial): void {
    for (const [row] of batch) trial.accepted.push(row.uuid);
    this.stats.delivered += batch.length;
    this.memory.lastAcceptedAt = new Date();
    this.acceptedOne = true;
    this.accepted();
    this.noteBacklog();
  }

  /**
   * Deletes the batch's delivered rows and re-identifies what their events touched, in one statement at the
   * end of the batch transaction (the identifies commit with the deletes): the `identities` rows it locks are
   * held only until the commit. An entity is identified at most once per run.
   */
  private async settleDelivered(tx: postgres.TransactionSql, accepted: readonly string[]): Promise<void> {
    if (accepted.length === 0) return;
    const { identified, enqueued } = await deleteDeliveredAndIdentify(tx, accepted, {
      schema: this.settings.schema,
      refreshMs: this.settings.identifyRefreshMs,
      exclude: [...this.identifiedThisRun],
    });
    for (const e of identified) this.identifiedThisRun.add(entityKey(e.kind, e.id));
    this.stats.identified += enqueued;
  }

  /**
   * A target failure (or an unconfirmed rejection, `rejectedAt` set): the rows wait out their backoff (the
   * attempt is counted, but never leads to a dead letter) and the run ends: the worker pauses before the next.
   */
  private async retry(
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
  private async schedule(
    tx: postgres.TransactionSql,
    rows: ClaimedRow[],
    error: string,
    retryAfterMs: number | undefined,
    rejectedAt: (Date | null)[] | null,
  ): Promise<number[]> {
    const delays = rows.map((row) => retryDelayMs(row.attempts + 1, this.settings.backoff, retryAfterMs));
    if (rows.length > 0) {
      const at = rows.map((_, i) => rejectedAt?.[i]?.toISOString() ?? null);
      await tx.unsafe(q.scheduleRetry(this.settings.schema), [rows.map((row) => row.uuid), delays, error, at as never]);
      this.stats.retried += rows.length;
    }
    return delays;
  }

  /** Moves rows to the dead-letter table: [row, reason, attempts made]. */
  private async deadLetter(tx: postgres.TransactionSql, rows: [ClaimedRow, string, number][]): Promise<void> {
    if (rows.length === 0) return;
    await tx.unsafe(q.deadLetter(this.settings.schema), [
      rows.map(([row]) => row.uuid),
      rows.map(([, reason]) => reason),
      rows.map(([, , attempts]) => attempts),
    ]);
    this.stats.deadLettered += rows.length;
  }
}

/** One batch being settled: its size, how its bisection went, and the events rejections were pinned on. */
interface Trial {
  size: number;
  state: BisectionState;
  /** The bisection was stopped: the target rejects broadly. */
  broad: boolean;
  /** The events a rejection was pinned on, with PostHog's answer and when it came. */
  pinned: [ClaimedRow, string, Date][];
  /** Its events PostHog accepted: deleted, and their profiles re-identified, when the batch is settled. */
  accepted: string[];
}

function describeAge(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1_000, 'second'],
  ];
  for (const [size, name] of units) if (ms >= size && ms % size === 0) return `${ms / size} ${name}${ms / size === 1 ? '' : 's'}`;
  return `${ms} ms`;
}
