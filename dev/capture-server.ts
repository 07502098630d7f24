/**
 * A PostHog-compatible capture endpoint on loopback, for tests, benchmarks and the demo.
 *
 * It speaks what posthog-node 5.70 sends, gzip-compressed unless the client has `disableCompression: true`:
 * - capture mode v0 (the default): `POST /batch/` with `{ api_key, batch: [...], sent_at, historical_migration? }`.
 *   It validates like PostHog's capture service (one invalid event rejects the whole request, nothing of it is
 *   kept) and answers `200 {"status":1}`. `/e/`, `/i/v0/e/` and `/capture/` take the same batch body, a bare
 *   array of events or a single event.
 * - `captureAi()`: `POST /i/v0/ai/batch/`, the same body, `$ai_*` events of up to 8 MiB each (413 beyond).
 * - capture mode v1 (`POSTHOG_CAPTURE_MODE=v1` when the client is built): `POST /i/v1/analytics/events` with
 *   Bearer auth and `{ created_at, historical_migration?, batch }`, answered with a verdict per event uuid
 *   (`ok`, `warning`, `drop`, `retry`). In that mode posthog-node still sends `$ai_*` events of `capture()` to
 *   `/batch/`.
 * Every accepted event is recorded in arrival order, with the endpoint it came through (`endpoint`), so counts
 * per uuid span all endpoints. Any other path answers 404 (and is logged, so a stray `/flags/` call is visible
 * in `requests`). dev/capture/types.ts details each endpoint's answers.
 *
 * Faults are injected on command: `failNext`, `failFor`, `rejectEventsWhere`, `delayNext`, `dropNext`,
 * `overQuota` (every endpoint), `verdictWhere` (v1). Injected failures apply before validation, like an outage
 * in front of PostHog would.
 *
 * Stricter than PostHog on purpose, so bugs surface here rather than as silently altered data:
 * a `distinct_id` over 200 characters is rejected (PostHog truncates it to 200), `distinct_id` must be a
 * string (PostHog stringifies numbers), and a well-formed but wrong api key is rejected with 401 when the
 * `apiKey` option is set (PostHog accepts it at capture and drops the events later).
 *
 * The server lives in dev/capture/: parse.ts (v0 and ai decoding and validation), v1.ts (Capture V1), faults.ts (injected faults),
 * log.ts (requests, events, waits), handler.ts (one request), server.ts (the HTTP server).
 */
export type {
  BatchItem,
  CaptureEndpoint,
  CaptureServer,
  CaptureServerOptions,
  FailOptions,
  FaultKind,
  ReceivedEvent,
  RejectOptions,
  RequestRecord,
  V1Verdict,
  VerdictOptions,
  WaitOptions,
} from './capture/types.ts';
export { startCaptureServer } from './capture/server.ts';
