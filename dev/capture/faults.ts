/**
 * The faults a test injects into the capture server: one-shot faults consumed one per request in the order
 * they were asked (fail, delay, drop), a window in which every request fails, rules that reject batches
 * holding a matching event, rules that give matching v1 events a verdict, and the over-quota switch.
 */
import { HttpError } from './parse.ts';
import type { BatchItem, FailOptions, RejectOptions, V1Verdict, VerdictOptions } from './types.ts';

/** What decides a request's fate before its body is looked at. */
export type Fault = { kind: 'fail' | 'failFor'; status: number; options: FailOptions } | { kind: 'delay'; ms: number } | { kind: 'drop'; ingested: boolean };

type OneShotFault = Exclude<Fault, { kind: 'failFor' }>;

interface RejectRule {
  predicate: (event: BatchItem) => boolean;
  status: number;
  remaining: number;
  message: string | undefined;
}

interface VerdictRule {
  predicate: (event: BatchItem) => boolean;
  verdict: V1Verdict;
  remaining: number;
}

function nonNegativeCount(n: number, name: string): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name}: n must be a non-negative integer, got ${n}`);
}

export class Faults {
  #oneShot: OneShotFault[] = [];
  #failWindow: { until: number; status: number; options: FailOptions } | undefined;
  #rejectRules: RejectRule[] = [];
  #verdictRules: VerdictRule[] = [];
  #overQuota = false;

  /** One-shot faults not consumed yet. */
  get pending(): number {
    return this.#oneShot.length;
  }

  get overQuota(): boolean {
    return this.#overQuota;
  }

  failNext(n: number, status: number, options: FailOptions): void {
    nonNegativeCount(n, 'failNext');
    for (let i = 0; i < n; i++) this.#oneShot.push({ kind: 'fail', status, options });
  }

  failFor(ms: number, status: number, options: FailOptions): void {
    this.#failWindow = { until: Date.now() + ms, status, options };
  }

  rejectEventsWhere(predicate: (event: BatchItem) => boolean, { status = 400, times = Infinity, message }: RejectOptions): void {
    this.#rejectRules.push({ predicate, status, remaining: times, message });
  }

  verdictWhere(predicate: (event: BatchItem) => boolean, result: V1Verdict['result'], { details, times = Infinity }: VerdictOptions): void {
    if (!['ok', 'warning', 'drop', 'retry'].includes(result)) throw new RangeError(`verdictWhere: unknown verdict ${JSON.stringify(result)}`);
    this.#verdictRules.push({ predicate, verdict: details === undefined ? { result } : { result, details }, remaining: times });
  }

  delayNext(n: number, ms: number): void {
    nonNegativeCount(n, 'delayNext');
    for (let i = 0; i < n; i++) this.#oneShot.push({ kind: 'delay', ms });
  }

  dropNext(n: number, ingested: boolean): void {
    nonNegativeCount(n, 'dropNext');
    for (let i = 0; i < n; i++) this.#oneShot.push({ kind: 'drop', ingested });
  }

  setOverQuota(enabled: boolean): void {
    this.#overQuota = enabled;
  }

  clear(): void {
    this.#oneShot = [];
    this.#failWindow = undefined;
    this.#rejectRules = [];
    this.#verdictRules = [];
    this.#overQuota = false;
  }

  /** The fault for the next request: the oldest one-shot fault, else the failure window while it lasts. */
  take(): Fault | undefined {
    const oneShot = this.#oneShot.shift();
    if (oneShot) return oneShot;
    if (this.#failWindow && Date.now() < this.#failWindow.until) return { kind: 'failFor', ...this.#failWindow };
    this.#failWindow = undefined;
    return undefined;
  }

  /** The rejection of the first rule a batch's event matches (counting it against the rule's `times`), if any. */
  rejection(batch: readonly BatchItem[]): HttpError | undefined {
    for (const rule of this.#rejectRules) {
      const index = batch.findIndex((event) => rule.predicate(event));
      if (index === -1) continue;
      rule.remaining -= 1;
      if (rule.remaining <= 0) this.#rejectRules = this.#rejectRules.filter((r) => r !== rule);
      const match = batch[index]!;
      return new HttpError(
        rule.status,
        'rejected_event',
        rule.message ?? `batch[${index}]: event ${JSON.stringify(match.event)} uuid ${String(match.uuid)} rejected (injected)`,
        index,
      );
    }
    return undefined;
  }

  /**
   * The verdicts after the rules: each event PostHog would accept (`ok`, `warning`) gets the verdict of the first
   * rule it matches (counted against the rule's `times`). `changed` when a rule decided any event.
   */
  applyVerdicts(events: readonly BatchItem[], verdicts: readonly V1Verdict[]): { verdicts: V1Verdict[]; changed: boolean } {
    let changed = false;
    const result = events.map((event, index) => {
      const own = verdicts[index]!;
      if (own.result !== 'ok' && own.result !== 'warning') return own;
      const rule = this.#verdictRules.find((r) => r.predicate(event));
      if (!rule) return own;
      rule.remaining -= 1;
      if (rule.remaining <= 0) this.#verdictRules = this.#verdictRules.filter((r) => r !== rule);
      changed = true;
      return rule.verdict;
    });
    return { verdicts: result, changed };
  }
}
