/**
 * When a failed row is tried again: exponential backoff with half jitter, per row, so rows that failed
 * together spread out instead of retrying as a herd; a server's Retry-After is a floor. Pure.
 */

export interface BackoffPolicy {
  /** Delay scale of the first retry. */
  baseMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
}

/** 1 s doubling up to a minute: during an outage of any length, about one request a minute per worker. */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 60_000 };

/**
 * Delay before the next attempt of a row that has made `attempts` attempts (>= 1): uniformly random in
 * [cap/2, cap] where cap = min(maxMs, baseMs * 2^(attempts-1)), and never less than `retryAfterMs`.
 * (Half-jitter keeps a lower bound, so a retry never comes back immediately after a failure.)
 */
export function retryDelayMs(attempts: number, policy: BackoffPolicy = DEFAULT_BACKOFF, retryAfterMs = 0, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempts, 1) - 1, 30);
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  const jittered = cap / 2 + random() * (cap / 2);
  return Math.round(Math.max(jittered, Math.min(retryAfterMs, policy.maxMs * 4)));
}

/**
 * Parses an HTTP Retry-After header (delta-seconds or an HTTP date) into milliseconds from `now`;
 * undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
