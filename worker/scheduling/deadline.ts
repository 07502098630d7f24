/**
 * Bounds on how long the worker waits for its database. A connection can go silent without closing (a
 * network partition, a dead NAT entry) or be left broken by postgres.js (worker/lifecycle/database.ts): a query on it
 * never settles, and the worker, waiting on it, would stop delivering. Past these bounds it gives up with
 * `NoAnswer`, and replaces its pool (worker/scheduling/worker.ts), which also rejects the query left waiting.
 */

/** The database did not answer in time. */
export class NoAnswer extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoAnswer';
  }
}

/** One statement outside a batch (the idle probe, the next-due timer, target health, retention): an index lookup or a small write. */
export const STATEMENT_ANSWER_MS = 10_000;

/** `query`, or a `NoAnswer` naming `what` once `ms` have passed without it settling (it is left to the pool's replacement). */
export function within<T>(query: Promise<T>, what: string, ms = STATEMENT_ANSWER_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswer(`${what} got no answer from the database in ${ms / 1000} s`)), ms);
  });
  return Promise.race([query, silent]).finally(() => clearTimeout(timer));
}

/**
 * A watch on something that reports progress: `stalled` rejects with a `NoAnswer` once `quietMs()` (the time
 * since its last progress) reaches `ms`, checked every second; `stop()` ends the watch.
 */
export function watchProgress(quietMs: () => number, ms: number, what: string): { stalled: Promise<never>; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const every = Math.min(1_000, ms);
  const stalled = new Promise<never>((_, reject) => {
    const check = () => {
      const quiet = quietMs();
      if (quiet >= ms) reject(new NoAnswer(`${what} made no progress for ${Math.round(quiet / 1000)} s`));
      else timer = setTimeout(check, every);
    };
    timer = setTimeout(check, every);
  });
  return { stalled, stop: () => clearTimeout(timer) };
}
