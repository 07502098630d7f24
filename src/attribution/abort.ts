/** Abort reasons (docs/attribution.md, "Abort reasons"). Pure. */

/** The reasons a run's `AbortController.abort(reason)` is given; anything else is reported as `unknown`. */
export const ABORT_REASONS = ['cancelled', 'server-aborted', 'ghost', 'reaped', 'timeout'] as const;
export type AbortReason = (typeof ABORT_REASONS)[number] | 'unknown';

/**
 * The `abort_reason` for whatever an abort signal carried: one of the known strings as is; anything else
 * (another string, a `DOMException` from `abort()` with no reason, an `Error`, `undefined`) is `"unknown"`.
 */
export function abortReason(reason: unknown): AbortReason {
  return typeof reason === 'string' && (ABORT_REASONS as readonly string[]).includes(reason) ? (reason as AbortReason) : 'unknown';
}

/**
 * Whether an abort gets a server event. A person's own cancel (the stop button) gets none: the client
 * already sends `chat_message_stopped`. An automation run's cancel does, as does every other reason.
 */
export function emitsAbortEvent(reason: AbortReason, isAutomation: boolean): boolean {
  return !(reason === 'cancelled' && !isAutomation);
}
