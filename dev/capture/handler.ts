/**
 * One capture request, start to answer: an injected failure first (an outage in front of PostHog does not
 * look at the body), then the method, path, size and body checks, the reject rules, the quota and (v1) the
 * verdict rules; then the answer, at once or after a `delayNext` delay, or no answer at all for a `dropNext`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Fault, Faults } from './faults.ts';
import type { CaptureLog } from './log.ts';
import { endpointOf, HttpError, parseBatch, type CaptureRequest, type ParseLimits } from './parse.ts';
import type { BatchItem, CaptureEndpoint, FailOptions, RequestRecord, V1Verdict } from './types.ts';
import { parseV1, resultKey } from './v1.ts';

export interface HandlerContext {
  log: CaptureLog;
  faults: Faults;
  limits: ParseLimits;
  /** The `status` of an acceptance's body. */
  acceptance: 1 | 'Ok';
  /** Timers of delayed answers, cleared by close(). */
  timers: Set<NodeJS.Timeout>;
}

/** The body as read off the socket: `tooLarge` when it passed maxBodyBytes (then `raw` is empty). */
export interface ReadBody {
  raw: Buffer;
  tooLarge: boolean;
  bytes: number;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

export async function handleCapture(context: HandlerContext, req: IncomingMessage, res: ServerResponse, body: ReadBody): Promise<void> {
  const { log } = context;
  const url = new URL(req.url ?? '/', 'http://localhost');
  const request: CaptureRequest = { path: url.pathname.replace(/\/+$/, '') || '/', query: url.searchParams, headers: req.headers, raw: body.raw };
  const endpoint = endpointOf(request.path);
  const { entry, current } = log.open(req.method ?? 'GET', url.pathname, endpoint, body.bytes);

  const fault = context.faults.take();
  if (fault?.kind === 'fail' || fault?.kind === 'failFor') {
    await answerInjectedFailure(context, request, res, entry, fault);
    return log.notify();
  }

  const read = await readBatch(context, req.method, url.pathname, request, body.tooLarge, entry);
  if (fault?.kind === 'drop') {
    entry.fault = 'drop';
    entry.outcome = 'dropped';
    entry.error = 'connection dropped without a response';
    const kept = read.rejection ? undefined : acceptedPart(read);
    if (kept && fault.ingested) log.accept(entry, current(), kept.events, true, kept.verdicts);
    res.socket?.destroy();
    return log.notify();
  }

  const { rejection, overQuota } = decide(context, read, entry);
  /** Records what PostHog would keep; `late` when the client will not see the answer. */
  const ingest = (late: boolean) => {
    const kept = rejection || overQuota ? undefined : acceptedPart(read);
    if (kept) log.accept(entry, current(), kept.events, late, kept.verdicts);
  };

  const respond = () => {
    if (rejection) {
      entry.status = rejection.status;
      if (!res.destroyed) sendJson(res, rejection.status, rejectionBody(rejection, endpoint), rejection.headers);
    } else {
      ingest(false);
      entry.status = 200;
      const answer = acceptance(context, read, entry);
      if (!res.destroyed) sendJson(res, 200, answer.body, answer.headers);
    }
    log.notify();
  };
  if (fault?.kind !== 'delay') return respond();
  entry.fault ??= 'delay';
  entry.status = rejection ? rejection.status : 200; // what it will answer
  answerLater(context, res, fault.ms, respond, () => {
    entry.clientGone = true;
    ingest(true);
    log.notify();
  });
}

/** What PostHog does with a readable request: the reject rules, the quota, then (v1) the verdict rules. */
function decide(context: HandlerContext, read: ReadResult, entry: RequestRecord): { rejection?: HttpError; overQuota: boolean } {
  let rejection = read.rejection;
  if (read.batch && !rejection) {
    rejection = context.faults.rejection(read.batch);
    if (rejection) entry.fault = 'reject';
  }
  const overQuota = !rejection && context.faults.overQuota;
  if (overQuota) {
    entry.fault = 'overQuota';
    entry.outcome = 'over-quota';
    // Capture V1 refuses a project over its events quota outright; v0 answers 200 and keeps nothing.
    if (entry.endpoint === 'v1') rejection = new HttpError(429, 'billing_limit_exceeded', 'billing limit exceeded', undefined, { 'Retry-After': '1' });
  } else if (rejection) {
    entry.outcome = 'rejected';
  }
  if (rejection) entry.error = rejection.message;
  if (read.batch && read.verdicts && !rejection) {
    const applied = context.faults.applyVerdicts(read.batch, read.verdicts);
    read.verdicts = applied.verdicts;
    if (applied.changed) entry.fault ??= 'verdict';
  }
  return rejection ? { rejection, overQuota } : { overQuota };
}

/** The events PostHog keeps of a request: all of a v0 or ai batch, the `ok` and `warning` ones of a v1 batch. */
function acceptedPart(read: ReadResult): { events: BatchItem[]; verdicts?: V1Verdict[] } | undefined {
  const { batch, verdicts } = read;
  if (!batch) return undefined;
  if (!verdicts) return { events: batch };
  const kept = batch.flatMap((_, index) => (verdicts[index]!.result === 'ok' || verdicts[index]!.result === 'warning' ? [index] : []));
  return { events: kept.map((i) => batch[i]!), verdicts: kept.map((i) => verdicts[i]!) };
}

/** The 200's body and headers: `{"status":1}` on v0 and ai; on v1 every uuid's verdict, and `Retry-After: 1` if any is `retry`. */
function acceptance(context: HandlerContext, read: ReadResult, entry: RequestRecord): { body: unknown; headers: Record<string, string> } {
  if (!read.verdicts || !read.batch) return { body: { status: context.acceptance }, headers: {} };
  const results: Record<string, V1Verdict> = {};
  for (const [index, event] of read.batch.entries()) results[resultKey(event)] = read.verdicts[index]!;
  entry.verdicts = results;
  return { body: { results }, headers: read.verdicts.some((v) => v.result === 'retry') ? { 'Retry-After': '1' } : {} };
}

const ERROR_URI = 'https://posthog.com/docs/api';

function rejectionBody(rejection: HttpError, endpoint: CaptureEndpoint | undefined) {
  if (endpoint === 'v1') return { error: rejection.code, error_description: rejection.message, error_uri: ERROR_URI };
  return { type: 'validation_error', code: rejection.code, detail: rejection.message, ...(rejection.index !== undefined && { index: rejection.index }) };
}

/** `failNext` / `failFor`: answers the injected status without judging the body (parsed only to log what it carried). */
async function answerInjectedFailure(
  context: HandlerContext,
  request: CaptureRequest,
  res: ServerResponse,
  entry: RequestRecord,
  fault: Extract<Fault, { kind: 'fail' | 'failFor' }>,
): Promise<void> {
  entry.fault = fault.kind;
  entry.outcome = 'rejected';
  entry.error = `injected HTTP ${fault.status}`;
  const options: FailOptions = fault.options;
  const headers: Record<string, string> = { ...options.headers };
  if (options.retryAfter !== undefined) headers['Retry-After'] = String(options.retryAfter);
  await (entry.endpoint === 'v1' ? parseV1 : parseBatch)(request, entry, context.limits).catch(() => undefined);
  entry.status = fault.status;
  if (res.destroyed) return;
  if (options.raw !== undefined) {
    res.writeHead(fault.status, { 'Content-Length': String(Buffer.byteLength(options.raw)), ...headers });
    res.end(options.raw);
  } else {
    const body =
      entry.endpoint === 'v1'
        ? { error: 'injected_fault', error_description: entry.error, error_uri: ERROR_URI }
        : { type: 'injected_fault', detail: entry.error };
    sendJson(res, fault.status, options.body ?? body, headers);
  }
}

/** A request as read: its events (with their own verdicts on v1), or why it is refused. */
interface ReadResult {
  batch?: BatchItem[];
  verdicts?: V1Verdict[];
  rejection?: HttpError;
}

/** The request's events, or why it is refused (405, 404, 413, or the body's HttpError). */
async function readBatch(
  context: HandlerContext,
  method: string | undefined,
  pathname: string,
  request: CaptureRequest,
  tooLarge: boolean,
  entry: RequestRecord,
): Promise<ReadResult> {
  if (method !== 'POST') return { rejection: new HttpError(405, 'method_not_allowed', `${method} ${pathname}: only POST is served`) };
  if (!entry.endpoint) {
    const served = '/batch/, /e/, /i/v0/e/, /capture/, /i/v1/analytics/events, /i/v0/ai/batch/';
    return { rejection: new HttpError(404, 'not_found', `${pathname} is not served by this capture server (only ${served})`) };
  }
  if (tooLarge) return { rejection: new HttpError(413, 'payload_too_large', `request body exceeds ${context.limits.maxBodyBytes} bytes`) };
  try {
    if (entry.endpoint !== 'v1') return { batch: await parseBatch(request, entry, context.limits) };
    const { events, verdicts } = await parseV1(request, entry, context.limits);
    return { batch: events, verdicts };
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return { rejection: error };
  }
}

/**
 * `delayNext`: answers after `ms`. A client that gives up first (its request timeout), or is gone already,
 * calls `onClientGone`: PostHog would still have ingested the batch.
 */
function answerLater(context: HandlerContext, res: ServerResponse, ms: number, respond: () => void, onClientGone: () => void): void {
  // A client killed while its request was being read and checked is gone already: its 'close' came before the
  // listener below would, and the request would stay in flight until the delay ends, then count as answered.
  if (res.destroyed || res.socket?.destroyed !== false) {
    onClientGone();
    return;
  }
  const timer = setTimeout(() => {
    context.timers.delete(timer);
    res.off('close', gone);
    respond();
  }, ms);
  context.timers.add(timer);
  const gone = () => {
    clearTimeout(timer);
    context.timers.delete(timer);
    onClientGone();
  };
  res.once('close', gone);
}
