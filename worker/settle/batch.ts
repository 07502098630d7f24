/**
 * One claimed batch, in its transaction: what of it can be sent (worker/claim/rows.ts), the requests that send it
 * (worker/send/sender.ts), what PostHog's answers mean for each row (worker/send/outcome.ts has the rules), and the
 * writes that settle them (worker/settle/ledger.ts). The rows PostHog accepted are deleted at the end, in one
 * statement that also re-identifies the users, automation personas and organizations their events touched.
 *
 * A request PostHog rejects for its content is split in two and each half sent again (bisection), down to
 * the event a rejection is pinned on. What may dead-letter a row: a rejection that bisection pins on its event
 * alone twice, with other events accepted in between; a row stored corrupt; a row older than the maximum
 * age. A batch whose events are all rejected, or too many of them, is a target that rejects broadly (a
 * proxy mangling bodies, an API change): bisection stops early, nothing is dead-lettered, and the pass ends
 * as a target failure.
 *
 * On Capture V1 (`posthog.captureMode: 'v1'`) PostHog answers a request it takes with a verdict per event
 * (worker/send/outcome.ts `decideEvent`): `ok` and `warning` rows are deleted (the warnings counted, logged once per
 * batch and kept in the pass's stats), a `drop` row is dead-lettered with PostHog's details, a `retry` row alone
 * is scheduled again after its backoff while the pass goes on. An event with a verdict is never sent again in
 * the batch.
 *
 * `$ai_*` events go in requests of their own to PostHog's AI endpoint (a 413 there is bisected and pinned like a 400),
 * events older than `historicalAfterMs` in their own, flagged `historical_migration`, after the live ones (worker/send/lanes.ts).
 */
import type postgres from 'postgres';
import { redactForStorage } from '../../src/errors/redact.ts';
import type { Committed, Ledger, Settlement } from './ledger.ts';
import { decide, decideEvent, judgePinned, rejectsBroadly, type BisectionState } from '../send/outcome.ts';
import { type ClaimedRow, triage } from '../claim/rows.ts';
import { requestGroups } from '../send/lanes.ts';
import { type EventAnswer, sendBatch, summarizeWarnings, type Failure, type WireEvent, type WireRequest } from '../send/sender.ts';
import type { DrainSettings } from '../settings/settings.ts';
import type { TargetMemory } from '../health/target.ts';

/** What a batch sees of its drain pass. */
export interface BatchPass {
  readonly settings: DrainSettings;
  readonly ledger: Ledger;
  readonly memory: TargetMemory;
  /** The pass met a target failure (settled or not yet), or the worker is stopping: nothing more is sent. */
  halted(): boolean;
  /** A request met a target failure: told before its batch is settled, so that the other lanes stop at once. */
  targetFailed(): void;
  /** PostHog accepted events of this batch. */
  accepted(): void;
  /** Something of the pass moved (a PostHog answer): it has not stalled. */
  progressed(): void;
  /**
   * Uuids PostHog accepted whose settling has not committed (a batch transaction lost after sending): claimed
   * again, they are settled as delivered, not sent again. The worker's, across passes (worker/scheduling/worker.ts).
   */
  readonly unsettled: Set<string>;
}

type Sendable = [ClaimedRow, WireEvent];

/**
 * Sends a claimed batch and settles it in `tx`: every row is deleted, scheduled again, dead-lettered or
 * released. Nothing is written while requests are out; what PostHog's answers decide is queued and written at
 * the end, in one savepoint (worker/settle/ledger.ts `settle`), so that a write PostgreSQL refuses never rolls back
 * the deletion of what PostHog accepted. Uuids PostHog accepted are kept in `pass.unsettled` until the caller
 * has committed (the returned function removes them). Returns what the pass learns once `tx` commits.
 */
export async function settleBatch(tx: postgres.TransactionSql, rows: ClaimedRow[], pass: BatchPass): Promise<Committed | undefined> {
  pass.ledger.adoptSnapshots(rows);
  // Accepted by PostHog in an earlier batch whose transaction was lost: settled as delivered, whatever their
  // age or shape now, and not sent again.
  const known = rows.filter((row) => pass.unsettled.has(row.uuid));
  const rest = known.length === 0 ? rows : rows.filter((row) => !pass.unsettled.has(row.uuid));
  const { superseded, unsendable, sendable } = triage(rest, pass.settings.maxAgeMs);
  await pass.ledger.deleteSuperseded(tx, superseded);
  await pass.ledger.deadLetter(unsendable)(tx);
  const batch = new Batch(pass, sendable.length);
  batch.delivered(known, false);
  await batch.deliver(sendable);
  batch.judge();
  batch.reportWarnings();
  if (batch.accepted.length === 0 && batch.writes.length === 0) return undefined;
  for (const row of batch.accepted) pass.unsettled.add(row.uuid);
  const learned = await pass.ledger.settle(tx, batch.writes, batch.accepted);
  return () => {
    for (const row of batch.accepted) pass.unsettled.delete(row.uuid);
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
  /** Capture V1: the events PostHog accepted with a warning, and its details. */
  private readonly warnings: [string, string][] = [];
  private readonly pass: BatchPass;
  private readonly size: number;

  constructor(pass: BatchPass, size: number) {
    this.pass = pass;
    this.size = size;
  }

  private get ledger(): Ledger {
    return this.pass.ledger;
  }

  /**
   * Sends `batch` (or releases it), bisecting what PostHog rejects for its content. `$ai_*` events (AI endpoint) and
   * old events (flagged historical) go in requests of their own, one after another, live ones first.
   */
  async deliver(batch: Sendable[]): Promise<void> {
    if (batch.length === 0) return;
    if (!this.broad && rejectsBroadly(this.size, this.state)) this.broad = true;
    if (this.pass.halted() || this.broad) {
      // Another lane (or the first half of this bisection) met a target failure, the worker is stopping, or the
      // batch is being rejected broadly: left untouched, these rows are free again when the transaction commits.
      this.ledger.stats.released += batch.length;
      return;
    }
    const groups = requestGroups(batch, ([, wire]) => wire, Date.now(), this.pass.settings.historicalAfterMs);
    if (groups.length > 1) {
      for (const group of groups) await this.deliver(group.items);
      return;
    }
    const report = await sendBatch(
      this.pass.settings.target,
      batch.map(([, wire]) => wire),
      {
        stop: () => this.pass.halted(),
        onTargetFailure: () => this.pass.targetFailed(),
        answered: () => this.pass.progressed(),
        historical: groups[0]!.historical,
      },
    );
    this.observe(report.requests);
    if (report.answered) this.answered(batch, report.answered);
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
    // Never on the wire (posthog-node stopped at a failure after splitting): sent now, or released if the pass failed.
    await this.deliver(pick(report.unsent));
  }

  private observe(requests: readonly WireRequest[]): void {
    this.ledger.stats.requests += requests.length;
    for (const r of requests) {
      this.pass.settings.observeRequest?.(
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
    this.pass.accepted();
  }

  /**
   * Capture V1: the events PostHog gave a verdict other than `ok` (warnings are also among the accepted).
   * Each is settled by its own verdict; none of them is sent again in this batch.
   */
  private answered(batch: readonly Sendable[], answers: readonly EventAnswer[]): void {
    const rowOf = new Map(batch.map(([row]) => [row.uuid, row]));
    const dropped: [ClaimedRow, string, number][] = [];
    const retries = new Map<string, { rows: ClaimedRow[]; delays: number[] }>();
    const unanswered = new Map<string, ClaimedRow[]>();
    for (const { uuid, verdict } of answers) {
      const row = rowOf.get(uuid)!;
      const decision = decideEvent(verdict);
      switch (decision.action) {
        case 'delivered':
          if (decision.warning !== undefined) this.warnings.push([uuid, decision.warning]);
          break;
        case 'deadLetter':
          dropped.push([row, this.redact(decision.reason), row.attempts + 1]);
          break;
        case 'retryEvent': {
          const group = retries.get(decision.error) ?? { rows: [], delays: [] };
          group.rows.push(row);
          group.delays.push(...this.ledger.delays([row], decision.retryAfterMs));
          retries.set(decision.error, group);
          break;
        }
        case 'retry':
          unanswered.set(decision.error, [...(unanswered.get(decision.error) ?? []), row]);
          break;
      }
    }
    if (dropped.length > 0) this.writes.push(this.ledger.deadLetter(dropped));
    // PostHog took the rest of the request: these alone wait out their backoff, the pass goes on.
    for (const [error, { rows, delays }] of retries) this.writes.push(this.ledger.scheduleRetry(rows, this.redact(error), delays, null));
    // No verdict to act on: not PostHog's answer for them, a target failure (the pass ends, the worker pauses).
    for (const [error, rows] of unanswered) this.writes.push(this.ledger.retryAndPause(rows, this.redact(error), undefined, null));
  }

  /** Capture V1: the batch's warnings, counted, kept as the pass's last and told once (the worker logs them). */
  reportWarnings(): void {
    if (this.warnings.length === 0) return;
    const { summary, details } = summarizeWarnings(this.warnings);
    const message = this.redact(summary);
    this.ledger.stats.warned += this.warnings.length;
    this.ledger.stats.warning = message;
    this.pass.settings.onWarnings?.({ message, details, uuids: this.warnings.map(([uuid]) => uuid) });
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
        const rows = failed.map(([row]) => row);
        this.writes.push(this.ledger.retryAndPause(rows, this.redact(decision.error), decision.retryAfterMs, null));
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
      const verdict = judgePinned({ broad, rejectedAt: row.rejected_at, lastAcceptedAt: this.pass.memory.lastAcceptedAt });
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
      // again alone after its backoff. Not a target failure: the pass goes on.
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
    return redactForStorage(text, [this.pass.settings.target.apiKey]);
  }
}
