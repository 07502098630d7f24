/**
 * One drain run: claim due rows in batches, send each batch, settle every row (deleted once PostHog accepted
 * it, retried later, or dead-lettered with the reason), then re-identify every user, automation persona
 * and organization the delivered events touched, once each: the `$identify` / `$groupidentify` events are
 * written to the outbox, so they are delivered with the same guarantees, by the next run.
 *
 * A passing PostHog failure (outage, 429, timeout) ends the run: the failed rows wait out their backoff and
 * the worker pauses before the next run, so an outage costs a bounded number of requests, not one per
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
import type { ProfileFields } from '../src/event.ts';
import { record } from '../src/outbox/record.ts';
import { checkEventShape } from '../src/outbox/validate.ts';
import * as q from '../src/sql.ts';
import { retryDelayMs, type BackoffPolicy } from './backoff.ts';
import { TouchedProfiles } from './identify.ts';
import { decide } from './outcome.ts';
import { sendBatch, type PostHogTarget, type WireEvent } from './sender.ts';

export interface DrainSettings {
  schema: string;
  target: PostHogTarget;
  /** Rows per claim and per PostHog request. */
  batchSize: number;
  /** Batches in flight at once in this process. */
  concurrency: number;
  /** Attempts after which a row that keeps failing is dead-lettered. */
  maxAttempts: number;
  /** How long a batch's transaction may sit idle (a request out) before PostgreSQL ends it and frees its rows. */
  leaseSeconds: number;
  /** A run stops claiming after this long (and re-identifies); the worker starts another if work is left. */
  maxRunMs: number;
  backoff: BackoffPolicy;
  /** Called after each PostHog request with its duration and outcome (`accepted`, the HTTP status, `network`). */
  observeRequest?: (seconds: number, outcome: string) => void;
}

export interface RunStats {
  claimed: number;
  delivered: number;
  retried: number;
  deadLettered: number;
  /** `$identify` / `$groupidentify` events queued by this run. */
  identified: number;
  /** HTTP requests made to PostHog. */
  requests: number;
  durationMs: number;
  /** True when the run stopped with due rows left (time limit or shutdown), so another should follow. */
  more: boolean;
  /** Claimed rows given back unsent (the run had already failed, or the worker is stopping): no attempt counted. */
  released: number;
  /** Set when PostHog failed in a passing way: how long the worker should wait before the next run. */
  pauseMs?: number;
  /** The run's last passing failure (redacted), e.g. `PostHog answered HTTP 503: ...`. */
  error?: string;
}

interface ClaimedRow {
  uuid: string;
  event: string;
  distinct_id: string;
  properties: Record<string, unknown>;
  groups: Record<string, string>;
  timestamp: Date;
  user_id: string | null;
  user_profile: ProfileFields | null;
  automation_id: string | null;
  automation_profile: ProfileFields | null;
  organization_id: string | null;
  organization_profile: ProfileFields | null;
  attempts: number;
}

function snapshot(id: string | null, fields: ProfileFields | null) {
  return id !== null && fields !== null ? { id, fields } : undefined;
}

/**
 * Checks a stored row as `record()` checks an event (its properties are JSON already: they come from
 * jsonb): a row corrupted in the table is dead-lettered, not sent.
 */
function toWire(row: ClaimedRow): WireEvent {
  const event = checkEventShape(
    {
      event: row.event,
      distinctId: row.distinct_id,
      properties: row.properties,
      groups: row.groups,
      timestamp: row.timestamp,
      profiles: {
        user: snapshot(row.user_id, row.user_profile),
        automation: snapshot(row.automation_id, row.automation_profile),
        organization: snapshot(row.organization_id, row.organization_profile),
      },
    },
    'row',
  );
  return { uuid: row.uuid, event: event.event, distinctId: event.distinctId, properties: event.properties, groups: event.groups, timestamp: row.timestamp };
}

export class DrainRun {
  readonly stats: RunStats = { claimed: 0, delivered: 0, retried: 0, deadLettered: 0, released: 0, identified: 0, requests: 0, durationMs: 0, more: false };
  private readonly touched = new TouchedProfiles();
  private readonly sql: postgres.Sql;
  private readonly settings: DrainSettings;
  private readonly signal: AbortSignal | undefined;
  private readonly probe: boolean;
  private onBacklog: (() => void) | undefined;
  private claimedFull = false;
  private acceptedOne = false;
  /** Resolved when PostHog first accepts a batch in this run (a probe run then opens its other lanes). */
  private accepted!: () => void;
  private readonly firstAccepted = new Promise<void>((resolve) => (this.accepted = resolve));

  /**
   * `probe`: the previous run ended on a passing PostHog failure, so this one sends one batch at a time
   * until PostHog accepts one. `onBacklog`: called once, as soon as a claim has come back full (there is a
   * backlog) and PostHog has accepted a batch (it is up), so other workers may join in.
   */
  constructor(sql: postgres.Sql, settings: DrainSettings, signal?: AbortSignal, options: { probe?: boolean; onBacklog?: () => void } = {}) {
    this.sql = sql;
    this.settings = settings;
    this.signal = signal;
    this.probe = options.probe ?? false;
    this.onBacklog = options.onBacklog;
  }

  private noteBacklog(): void {
    if (!this.onBacklog || !this.claimedFull || !this.acceptedOne) return;
    const call = this.onBacklog;
    this.onBacklog = undefined;
    call();
  }

  /** The run failed in a passing way: nothing more is claimed or sent. */
  private get failed(): boolean {
    return this.stats.pauseMs !== undefined;
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
    const identities = this.touched.toEvents();
    if (identities.length > 0) {
      await record(this.sql, identities, { schema: this.settings.schema });
      this.stats.identified = identities.length;
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
          tx.unsafe<ClaimedRow[]>(q.claimBatch(schema), [batchSize], { prepare: true }),
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
    const invalid: [ClaimedRow, string][] = [];
    for (const row of rows) {
      try {
        sendable.push([row, toWire(row)]);
      } catch (error) {
        if (!(error instanceof OutboxError)) throw error;
        invalid.push([row, `invalid stored event, not sent: ${error.message}`]);
      }
    }
    await this.deadLetter(tx, invalid.map(([row, reason]) => [row, reason, row.attempts]));
    await this.deliver(tx, sendable);
  }

  private async deliver(tx: postgres.TransactionSql, batch: [ClaimedRow, WireEvent][]): Promise<void> {
    if (batch.length === 0) return;
    if (this.failed || this.signal?.aborted) {
      // Another lane (or the first half of this bisection) met a PostHog failure, or the worker is stopping,
      // since these rows were claimed: left untouched, they are free again when the transaction commits.
      this.stats.released += batch.length;
      return;
    }
    const sentAt = performance.now();
    const result = await sendBatch(this.settings.target, batch.map(([, wire]) => wire));
    this.stats.requests++;
    this.settings.observeRequest?.((performance.now() - sentAt) / 1000, result.ok ? 'accepted' : result.kind === 'http' ? String(result.status) : 'network');
    const decision = decide(result, batch.length);
    // PostHog's answers may quote the events (emails) or the request (the key): never stored or logged as is
    const redact = (text: string) => redactForStorage(text, [this.settings.target.apiKey]);
    switch (decision.action) {
      case 'delivered': {
        await tx.unsafe(q.deleteDelivered(this.settings.schema), [batch.map(([row]) => row.uuid)], { prepare: true });
        this.stats.delivered += batch.length;
        this.acceptedOne = true;
        this.accepted();
        this.noteBacklog();
        for (const [row] of batch) {
          this.touched.add({
            timestamp: row.timestamp,
            user: snapshot(row.user_id, row.user_profile),
            automation: snapshot(row.automation_id, row.automation_profile),
            organization: snapshot(row.organization_id, row.organization_profile),
          });
        }
        return;
      }
      case 'bisect': {
        const middle = Math.ceil(batch.length / 2);
        await this.deliver(tx, batch.slice(0, middle));
        await this.deliver(tx, batch.slice(middle));
        return;
      }
      case 'dead':
        await this.deadLetter(tx, batch.map(([row]) => [row, redact(decision.reason), row.attempts + 1]));
        return;
      case 'retry': {
        const error = redact(decision.error);
        this.stats.error = error;
        // this attempt is number `row.attempts + 1`
        const exhausted = batch.filter(([row]) => row.attempts + 1 >= this.settings.maxAttempts);
        const again = batch.filter(([row]) => row.attempts + 1 < this.settings.maxAttempts);
        await this.deadLetter(tx, exhausted.map(([row]) => [row, `gave up after ${row.attempts + 1} attempts: ${error}`, row.attempts + 1]));
        if (again.length > 0) {
          const delays = again.map(([row]) => retryDelayMs(row.attempts + 1, this.settings.backoff, decision.retryAfterMs));
          await tx.unsafe(q.scheduleRetry(this.settings.schema), [again.map(([row]) => row.uuid), delays, error]);
          this.stats.retried += again.length;
          this.stats.pauseMs = Math.max(this.stats.pauseMs ?? 0, Math.min(...delays));
        } else {
          this.stats.pauseMs = Math.max(this.stats.pauseMs ?? 0, this.settings.backoff.baseMs);
        }
        return;
      }
    }
  }

  /** Moves rows to the dead-letter table: [row, reason, attempts made]. */
  private async deadLetter(tx: postgres.TransactionSql, rows: [ClaimedRow, string, number][]): Promise<void> {
    if (rows.length === 0) return;
    await tx.unsafe(q.deadLetter(this.settings.schema), [rows.map(([row]) => row.uuid), rows.map(([, reason]) => reason), rows.map(([, , attempts]) => attempts)]);
    this.stats.deadLettered += rows.length;
  }
}
