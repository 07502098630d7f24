/**
 * What the capture server saw: the requests in arrival order, the events it accepted, and the waits of a
 * test on either. `reset()` starts a new generation: requests that arrived before it are still answered,
 * but what they carry is no longer recorded.
 */
import type { BatchItem, CaptureEndpoint, CaptureServerOptions, ReceivedEvent, RequestRecord, V1Verdict, WaitOptions } from './types.ts';

interface Waiter {
  check(): void;
  fail(error: Error): void;
}

function describeCondition(condition: number | ((...args: never[]) => boolean), noun: string): string {
  if (typeof condition === 'number') return `at least ${condition} ${noun}`;
  return condition.name ? `predicate ${condition.name}` : 'predicate';
}

function summarizeStatuses(requests: readonly RequestRecord[]): string {
  const counts = new Map<string, number>();
  for (const r of requests) {
    const key = r.status === 0 ? 'dropped' : r.status === 200 && r.outcome === 'pending' ? 'pending' : String(r.status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k}×${n}`).join(', ') || 'none';
}

export class CaptureLog {
  #events: ReceivedEvent[] = [];
  #accepted = 0;
  #requests: RequestRecord[] = [];
  #generation = 0;
  #nextRequestId = 1;
  #closed = false;
  readonly #waiters = new Set<Waiter>();
  readonly #keepEvents: boolean;
  readonly #onAccepted: CaptureServerOptions['onAccepted'];
  /** One-shot faults still pending, named in a wait's timeout error. */
  readonly #pendingFaults: () => number;

  constructor(options: Pick<CaptureServerOptions, 'keepEvents' | 'onAccepted'>, pendingFaults: () => number) {
    this.#keepEvents = options.keepEvents ?? true;
    this.#onAccepted = options.onAccepted;
    this.#pendingFaults = pendingFaults;
  }

  get keepEvents(): boolean {
    return this.#keepEvents;
  }
  get events(): readonly ReceivedEvent[] {
    return this.#events;
  }
  get accepted(): number {
    return this.#accepted;
  }
  get requests(): readonly RequestRecord[] {
    return this.#requests;
  }

  /** Logs a request whose body has been read; `current()` is false once reset() or close() ran after it. */
  open(method: string, path: string, endpoint: CaptureEndpoint | undefined, bytes: number): { entry: RequestRecord; current: () => boolean } {
    const generation = this.#generation;
    const entry: RequestRecord = {
      id: this.#nextRequestId++,
      at: Date.now(),
      method,
      path,
      endpoint,
      status: 0,
      events: 0,
      uuids: [],
      gzip: false,
      bytes,
      outcome: 'pending',
      historicalMigration: false,
      late: false,
      clientGone: false,
    };
    this.#requests.push(entry);
    this.notify();
    return { entry, current: () => generation === this.#generation && !this.#closed };
  }

  /**
   * Records an accepted batch (`late`: its client will not see the 200); on v1 `verdicts` are the accepted
   * events' own (`ok` or `warning`).
   */
  accept(entry: RequestRecord, current: boolean, batch: BatchItem[], late: boolean, verdicts?: readonly V1Verdict[]): void {
    entry.outcome = 'accepted';
    entry.late = late;
    if (!current) return;
    const receivedAt = Date.now();
    this.#accepted += batch.length;
    this.#onAccepted?.(batch, receivedAt);
    if (!this.#keepEvents) return;
    for (const [index, wire] of batch.entries()) {
      wire.properties ??= {};
      const verdict = verdicts?.[index];
      Object.defineProperties(wire, {
        late: { value: late, enumerable: false },
        requestId: { value: entry.id, enumerable: false },
        receivedAt: { value: receivedAt, enumerable: false },
        endpoint: { value: entry.endpoint, enumerable: false },
        historicalMigration: { value: entry.historicalMigration, enumerable: false },
        verdict: { value: verdict?.result ?? 'ok', enumerable: false },
        details: { value: verdict?.details, enumerable: false },
      });
      this.#events.push(wire as ReceivedEvent);
    }
  }

  notify(): void {
    for (const waiter of [...this.#waiters]) waiter.check();
  }

  reset(): void {
    this.#generation += 1;
    this.#events = [];
    this.#accepted = 0;
    this.#requests = [];
  }

  /** No more recording; pending waits reject. */
  close(): void {
    this.#closed = true;
    for (const waiter of [...this.#waiters]) waiter.fail(new Error('capture server closed while waiting'));
  }

  byUuid(): Map<string, ReceivedEvent[]> {
    const result = new Map<string, ReceivedEvent[]>();
    for (const event of this.#events) {
      if (typeof event.uuid !== 'string') continue;
      const list = result.get(event.uuid) ?? [];
      list.push(event);
      result.set(event.uuid, list);
    }
    return result;
  }

  /** Copies per uuid, and how many of them are late. */
  counts(ignoreLate: boolean): Map<string, { count: number; late: number }> {
    const result = new Map<string, { count: number; late: number }>();
    for (const event of this.#events) {
      if (typeof event.uuid !== 'string' || (ignoreLate && event.late)) continue;
      const entry = result.get(event.uuid) ?? { count: 0, late: 0 };
      entry.count += 1;
      if (event.late) entry.late += 1;
      result.set(event.uuid, entry);
    }
    return result;
  }

  /** Resolves with a copy of `list()` once it holds `condition` items or satisfies the predicate. */
  waitUntil<T>(
    list: () => readonly T[],
    condition: number | ((items: readonly T[]) => boolean),
    noun: string,
    { timeoutMs = 5_000, what }: WaitOptions,
  ): Promise<readonly T[]> {
    const satisfied = (items: readonly T[]) => (typeof condition === 'number' ? items.length >= condition : condition(items));
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new Error('capture server: waitFor on a closed server'));
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      const waiter: Waiter = {
        check: () => {
          let ok: boolean;
          try {
            ok = satisfied(list());
          } catch (error) {
            done();
            return reject(error);
          }
          if (ok) {
            done();
            resolve([...list()]);
          }
        },
        fail: (error) => {
          done();
          reject(error);
        },
      };
      const label = what ? `${what} (${describeCondition(condition, noun)})` : describeCondition(condition, noun);
      const timer = setTimeout(
        () => waiter.fail(new Error(`capture server: timed out after ${timeoutMs} ms waiting for ${label}; ${this.#summary()}`)),
        timeoutMs,
      );
      this.#waiters.add(waiter);
      waiter.check();
    });
  }

  /** What the server saw, for a timeout error: counts, statuses, the last requests, pending faults. */
  #summary(): string {
    const requests = this.#requests;
    const recent = requests
      .slice(-5)
      .map(
        (r) =>
          `#${r.id} ${r.path} ${r.status === 0 ? r.outcome : r.status}${r.fault ? ` [${r.fault}]` : ''} ${r.events} events${r.error ? `: ${r.error}` : ''}`,
      )
      .join('; ');
    const pending = this.#pendingFaults();
    return (
      `${this.#events.length} events accepted (${this.#events.filter((e) => e.late).length} late), ` +
      `${requests.length} requests (${summarizeStatuses(requests)})` +
      (recent ? `; last: ${recent}` : '') +
      (pending ? `; ${pending} one-shot faults still pending` : '')
    );
  }
}
