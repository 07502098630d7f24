/**
 * A PostHog-compatible capture endpoint on loopback, for tests, benchmarks and the demo.
 *
 * It speaks what posthog-node (v5, capture mode v0) sends: `POST /batch/` with
 * `{ api_key, batch: [...], sent_at, historical_migration? }`, gzip-compressed (`Content-Encoding: gzip`)
 * unless the client has `disableCompression: true`. It validates like PostHog's capture service (one
 * invalid event rejects the whole request, nothing of it is kept), answers `200 {"status":1}` and records
 * the accepted events in arrival order. `/e/`, `/i/v0/e/` and `/capture/` take the same batch body, a bare
 * array of events or a single event. Any other path answers 404 (and is logged, so a stray `/flags/`
 * call is visible in `requests`).
 *
 * Faults are injected on command: `failNext`, `failFor`, `rejectEventsWhere`, `delayNext`, `dropNext`,
 * `overQuota`. Injected faults apply before validation, like an outage in front of PostHog would.
 *
 * Stricter than PostHog on purpose, so bugs surface here rather than as silently altered data:
 * a `distinct_id` over 200 characters is rejected (PostHog truncates it to 200), `distinct_id` must be a
 * string (PostHog stringifies numbers), and a well-formed but wrong api key is rejected with 401 when the
 * `apiKey` option is set (PostHog accepts it at capture and drops the events later).
 *
 * The server lives in dev/capture/: parse.ts (decoding and validation), faults.ts (injected faults),
 * log.ts (requests, events, waits), handler.ts (one request), server.ts (the HTTP server).
 */
export type {
  CaptureServer,
  CaptureServerOptions,
  FailOptions,
  FaultKind,
  ReceivedEvent,
  RejectOptions,
  RequestRecord,
  WaitOptions,
  BatchItem,
} from './capture/types.ts';
export { startCaptureServer } from './capture/server.ts';
