/**
 * How often an idle worker looks for due rows: fast while there is traffic, slower when there is none.
 * Pure.
 *
 * The worker finds new events by polling an index-only "anything due?" probe, not by a NOTIFY from the
 * handlers' transactions: PostgreSQL serialises the commits of every transaction that notified (a global
 * lock on the notification queue is held across the commit's WAL flush), which on a durable server cut the
 * handlers' commit rate to about a third.
 */

export interface PollPolicy {
  /** The delay after a pass that claimed rows: the probe comes back this soon. */
  minMs: number;
  /** The delay when nothing has been found for a while: an idle worker probes this often. */
  maxMs: number;
  /** Each empty probe (or a pass that claimed nothing) multiplies the delay by this. */
  growth: number;
}

/** 20 ms while events flow (commit-to-claim well under 100 ms), easing to 2 probes a second when idle. */
export const DEFAULT_POLL: PollPolicy = { minMs: 20, maxMs: 500, growth: 1.5 };

/** The delay before the next probe: back to the minimum after finding work, else a little longer. */
export function nextPollDelay(previousMs: number, foundWork: boolean, policy: PollPolicy = DEFAULT_POLL): number {
  if (foundWork) return policy.minMs;
  return Math.min(policy.maxMs, Math.max(policy.minMs, Math.round(previousMs * policy.growth)));
}
