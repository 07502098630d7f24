/**
 * The capture protocol of a posthog-node client, chosen by the worker (`posthog.captureMode`), not by the
 * environment: posthog-node reads `POSTHOG_CAPTURE_MODE` in its constructor.
 */

/** PostHog's capture protocols, as posthog-node's `POSTHOG_CAPTURE_MODE` names them. */
export type CaptureMode = 'v0' | 'v1';

/**
 * Builds a posthog-node client in capture mode `mode` whatever `POSTHOG_CAPTURE_MODE` says: posthog-node reads
 * that variable when a client is constructed (set to `v1`: Capture V1; unset or anything else: v0). It is set to
 * the mode (or, for v0, hidden) only for the synchronous constructor call, so nothing else in the process sees
 * it change.
 */
export function withCaptureMode<T>(mode: CaptureMode, construct: () => T): T {
  const previous = process.env.POSTHOG_CAPTURE_MODE;
  if (mode === 'v0' ? previous === undefined : previous === mode) return construct();
  if (mode === 'v0') delete process.env.POSTHOG_CAPTURE_MODE;
  else process.env.POSTHOG_CAPTURE_MODE = mode;
  try {
    return construct();
  } finally {
    if (previous === undefined) delete process.env.POSTHOG_CAPTURE_MODE;
    else process.env.POSTHOG_CAPTURE_MODE = previous;
  }
}
