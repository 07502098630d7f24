/** Real posthog-node clients for the capture server's tests, in capture mode v0 or v1, and what they report. */
import { PostHog, type PostHogOptions } from 'posthog-node';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { type CaptureMode, withCaptureMode } from '../../worker/send/capture-mode.ts';

export const KEY = 'phc_test';

/** One capture server accepting KEY for the test file, emptied before each test; `started` receives it. */
export function captureServerHooks(started: (server: CaptureServer) => void): void {
  let server: CaptureServer | undefined;
  beforeAll(async () => {
    server = await startCaptureServer({ apiKey: KEY });
    started(server);
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => server!.reset());
}

/** What posthog-node emits on 'error' when a Capture V1 batch did not fully deliver (the class is not exported). */
export interface CaptureV1Error extends Error {
  readonly requestId: string;
  readonly drops: { uuid: string; details?: string }[];
  readonly retryExhausted: string[];
  readonly cause?: unknown;
}

export interface Client {
  ph: PostHog;
  /** Everything the client emitted on 'error' (Capture V1 reports there, flush() resolves). */
  errors: Error[];
}

/**
 * A client built like the worker builds it (no timer, no retries, explicit flush), in capture mode `mode`
 * (the worker's `withCaptureMode`: posthog-node reads POSTHOG_CAPTURE_MODE in its constructor).
 */
export function client(url: string, mode: CaptureMode = 'v0', options: Partial<PostHogOptions> = {}): Client {
  const ph = withCaptureMode(
    mode,
    () =>
      new PostHog(KEY, {
        host: url,
        flushAt: 1000,
        flushInterval: 0,
        maxQueueSize: 100_000,
        fetchRetryCount: 0,
        requestTimeout: 2_000,
        disableGeoip: true,
        ...options,
      }),
  );
  const errors: Error[] = [];
  ph.on('error', (error: Error) => errors.push(error));
  return { ph, errors };
}

export function uuid(n: number): string {
  return `01900000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** The headers posthog-node sends with a Capture V1 request (gzip aside). */
export function v1Headers(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const headers: Record<string, string | undefined> = {
    Authorization: `Bearer ${KEY}`,
    'Content-Type': 'application/json',
    'PostHog-Sdk-Info': 'posthog-node/5.70.0',
    'PostHog-Attempt': '1',
    'PostHog-Request-Id': '01a24e8c-1635-763f-b179-9088a21a77a5',
    'PostHog-Request-Timestamp': new Date().toISOString(),
    'User-Agent': 'posthog-node/5.70.0',
    ...overrides,
  };
  return Object.fromEntries(Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** A V1 wire event as posthog-node builds it. */
export function v1Event(n: number, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { event: 'tool_called', uuid: uuid(n), distinct_id: `user_${n}`, timestamp: '2026-05-01T12:00:00.000Z', options: {}, properties: { i: n }, ...fields };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const res = await fetch(url, { method: 'POST', headers, body: payload });
  const raw = await res.text();
  return { status: res.status, body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {}, headers: res.headers };
}
