/**
 * One claimed batch, in its transaction: what of it can be sent (worker/rows.ts), the requests that send it
 * (worker/sender.ts), what PostHog's answers mean for each row (worker/outcome.ts has the rules), and the
 * writes that settle them (worker/ledger.ts). The rows PostHog accepted are deleted at the end, in one
 * statement that also re-identifies the users, automation personas and organizations their events touched.
 *
 * A request PostHog rejects for its content is split in two and each half sent again (bisection), down to
 * the event a rejection is pinned on. What may dead-letter a row: a rejection that bisection pins on its event
 * alone twice, with other events accepted in between; a row stored corrupt; a row older than the maximum
 * age. A batch whose events are all rejected, or too many of them, is a target that rejects broadly (a
 * proxy mangling bodies, an API change): bisection stops early, nothing is dead-lettered, and the run ends
 * as a target failure.
 */
import type postgres from 'postgres';
import { redactForStorage } from '../src/redact.ts';
import type { Committed, Ledger, Settlement } from './ledger.ts';
import { decide, judgePinned, rejectsBroadly, type BisectionState } from './outcome.ts';
import { type ClaimedRow, triage } from './rows.ts';
import { sendBatch, type Failure, type WireEvent, type WireRequest } from './sender.ts';
import type { DrainSettings } from './settings.ts';
import type { TargetMemory } from './target.ts';

/** What a batch sees of its drain run. */
export interface BatchRun {
  readonly settings: DrainSettings;
  readonly ledger: Ledger;
  readonly memory: TargetMemory;
  /** The run met a target failure (settled or not yet), or the worker is stopping: nothing more is sent. */
  halted(): boolean;
  /** A request met a target failure: told before its batch is settled, so that the other lanes stop at once. */
  targetFailed(): void;
  /** PostHog accepted events of this batch. */
  accepted(): void;
  /** Something of the run moved (a PostHog answer): it has not stalled. */
  progressed(): void;
  /**
   * Uuids PostHog accepted whose settling has not committed (a batch transaction lost after sending): claimed
   * again, they are settled as delivered, not sent again. The worker's, across runs (worker/worker.ts).
   */
  readonly unsettled: Set<string>;
}

type Sendable = [ClaimedRow, WireEvent];

/**
 * Sends a claimed batch and settles it in `tx`: every row is deleted, scheduled again, dead-lettered or
 * released. Nothing is written while requests are out; what PostHog's answers decide is queued and written at
 * the end, in one savepoint (worker/ledger.ts `settle`), so that a write PostgreSQL refuses never rolls back
 * the deletion of what PostHog accepted. Uuids PostHog accepted are kept in `run.unsettled` until the caller
 * has committed (the returned function removes them). Returns what the run learns once `tx` commits.
 */
export async function settleBatch(tx: postgres.TransactionSql, rows: ClaimedRow[], run: BatchRun): Promise<Committed | undefined> {
  run.ledger.adoptSnapshots(rows);
  // Accepted by PostHog in an earlier batch whose transaction was lost: settled as delivered, whatever their
  // age or shape now, and not sent again.
  const known = rows.filter((row) => run.unsettled.has(row.uuid));
  const rest = known.length === 0 ? rows : rows.filter((row) => !run.unsettled.has(row.uuid));
  const { superseded, unsendable, sendable } = triage(rest, run.settings.maxAgeMs);
  await run.ledger.deleteSuperseded(tx, superseded);
  await run.ledger.deadLetter(unsendable)(tx);
  const batch = new Batch(run, sendable.length);
  batch.delivered(known, false);
  await batch.deliver(sendable);
  batch.judge();
  if (batch.accepted.length === 0 && batch.writes.length === 0) return undefined;
  for (const row of batch.accepted) run.unsettled.add(row.uuid);
  const learned = await run.ledger.settle(tx, batch.writes, batch.accepted);
  return () => {
    for (const row of batch.accepted) run.unsettled.delete(row.uuid);
    learned?.();
  };
}

/** One batch being sent: its size, how its bisection went, and the events rejections were pinned on. */
class Batch {
  private readonly state: BisectionState = { accepted: 0, rejectedRequests: 0, pinned: 0 };
  /** The bisection was stopped: the target rejects broadly. */
  private broad = false;
  /** The events a rejection was pinned on, with PostHog's answer and when it came. */
  private readonly pinned: [ClaimedRow, string, Date][] = [];
  /** Its events PostHog accepted: deleted, and their profiles re-identified, when the batch is settled. */
  readonly accepted: ClaimedRow[] = [];
  /** What PostHog's answers decided for the other rows (retries, dead letters), written when the batch is settled. */
  readonly writes: Settlement[] = [];
  private readonly run: BatchRun;
  private readonly size: number;

  constructor(run: BatchRun, size: number) {
    this.run = run;
    this.size = size;
  }

  private get ledger(): Ledger {
    return this.run.ledger;
  }

  /** Sends `batch` (or releases it), bisecting what PostHog rejects for its content. */
  async deliver(batch: Sendable[]): Promise<void> {
    if (batch.length === 0) return;
    if (!this.broad && rejectsBroadly(this.size, this.state)) this.broad = true;
    if (this.run.halted() || this.broad) {
      // Another lane (or the first half of this bisection) met a target failure, the worker is stopping, or the
      // batch is being rejected broadly: left untouched, these rows are free again when the transaction commits.
      this.ledger.stats.released += batch.length;
      return;
    }
    const report = await sendBatch(
      this.run.settings.target,
      batch.map(([, wire]) => wire),
      { stop: () => this.run.halted(), onTargetFailure: () => this.run.targetFailed(), answered: () => this.run.progressed() },
    );
    this.observe(report.requests);
    if (report.accepted.length === batch.length) {
      // All of it (the common case): no lookup of each event by its uuid.
      this.delivered(batch);
      this.state.accepted += batch.length;
      return;
    }
    const byUuid = new Map(batch.map((entry) => [entry[0].uuid, entry]));
    const pick = (uuids: readonly string[]) => uuids.map((u) => byUuid.get(u)!);

    if (report.accepted.length > 0) {
      this.delivered(pick(report.accepted));
      this.state.accepted += report.accepted.length;
    }
    if (report.failed) await this.refused(pick(report.failed.uuids), report.failed.verdict);
    // Never on the wire (posthog-node stopped at a failure after splitting): sent now, or released if the run failed.
    await this.deliver(pick(report.unsent));
  }

  private observe(requests: readonly WireRequest[]): void {
    this.ledger.stats.requests += requests.length;
    for (const r of requests) {
      this.run.settings.observeRequest?.(
        r.seconds,
        r.verdict.kind === 'accepted' ? 'accepted' : r.verdict.status !== undefined ? String(r.verdict.status) : 'network',
      );
    }
  }

  /** PostHog accepted these (`fresh`: in this batch, not in an earlier one whose settling was lost). */
  delivered(batch: readonly (Sendable | ClaimedRow)[], fresh = true): void {
    for (const entry of batch) this.accepted.push(Array.isArray(entry) ? entry[0] : entry);
    if (!fresh || batch.length === 0) return;
    this.ledger.stats.delivered += batch.length;
    this.run.accepted();
  }

  /** The events of the request posthog-node stopped at: bisected, pinned, or retried after a backoff. */
  private async refused(failed: Sendable[], verdict: Failure): Promise<void> {
    const decision = decide(verdict, failed.length);
    switch (decision.action) {
      case 'delivered':
        break; // a failed request is never accepted
      case 'bisect': {
        this.state.rejectedRequests++;
        const middle = Math.ceil(failed.length / 2);
        await this.deliver(failed.slice(0, middle));
        await this.deliver(failed.slice(middle));
        break;
      }
      case 'pinned':
        this.state.rejectedRequests++;
        this.state.pinned += failed.length;
        for (const [row] of failed) this.pinned.push([row, decision.reason, new Date()]);
        break;
      case 'retry': {
        const error = this.redact(decision.error);
        this.writes.push(
          this.ledger.retryAndPause(
            failed.map(([row]) => row),
            error,
            decision.retryAfterMs,
            null,
          ),
        );
        break;
      }
    }
  }

  /** Dead-letters the events a rejection was pinned on if they are confirmed poison; keeps the others. */
  judge(): void {
    const broad = this.broad || rejectsBroadly(this.size, this.state);
    if (this.pinned.length === 0 && !broad) return;
    const poison: [ClaimedRow, string, number][] = [];
    const kept: [ClaimedRow, string, Date][] = [];
    for (const [row, reason, at] of this.pinned) {
      const verdict = judgePinned({ broad, rejectedAt: row.rejected_at, lastAcceptedAt: this.run.memory.lastAcceptedAt });
      if (verdict === 'poison') poison.push([row, this.redact(reason), row.attempts + 1]);
      else kept.push([row, reason, at]);
    }
    this.writes.push(this.ledger.deadLetter(poison));
    if (broad) this.ledger.stats.rejectedBroadly++;
    if (kept.length === 0 && !broad) return;
    const firstReason = kept[0]?.[1] ?? this.pinned[0]?.[1] ?? 'every request refused';
    const rejectedAt = kept.map(([, , at]) => at);
    if (!broad && this.state.accepted > 0) {
      // PostHog took the rest of the batch: most likely poison, confirmed (and dead-lettered) if it is refused
      // again alone after its backoff. Not a target failure: the run goes on.
      const error = this.redact(`PostHog refused the event alone once (dead-lettered if refused again): ${firstReason}`);
      const rows = kept.map(([row]) => row);
      this.writes.push(this.ledger.scheduleRetry(rows, error, this.ledger.delays(rows, undefined), rejectedAt));
      this.ledger.stats.held += kept.length;
      return;
    }
    const error = this.redact(
      broad
        ? `PostHog rejects broadly: ${this.state.pinned} of the ${this.state.pinned + this.state.accepted} event(s) it answered in a batch of ${this.size} were refused (${this.state.rejectedRequests} requests refused): not dead-lettered, kept and retried: ${firstReason}`
        : `PostHog refused the event, with no other event accepted since to confirm it is the event's fault: kept and retried: ${firstReason}`,
    );
    this.writes.push(
      this.ledger.retryAndPause(
        kept.map(([row]) => row),
        error,
        undefined,
        rejectedAt,
      ),
    );
    this.ledger.stats.held += kept.length;
  }

  private redact(text: string): string {
    // PostHog's answers may quote the events (emails) or the request (the key): never stored or logged as is
    return redactForStorage(text, [this.run.settings.target.apiKey]);
  }
}
