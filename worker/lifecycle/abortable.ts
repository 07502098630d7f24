/** Start-up steps that a signal can cut short: a deploy may cancel a process still waiting on its database. */

/**
 * Resolves or rejects as `work` does, or rejects with the signal's reason as soon as `signal` aborts (the
 * work itself goes on; the caller stops what it started, which ends it).
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => undefined);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
