/**
 * One capture request, start to answer: an injected failure first (an outage in front of PostHog does not
 * look at the body), then the method, path, size and body checks, the reject rules and the quota; then the
 * answer, at once or after a `delayNext` delay, or no answer at all for a `dropNext`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Fault, Faults } from './faults.ts';
import type { CaptureLog } from './log.ts';
import { BATCH_PATHS, HttpError, parseBatch, type CaptureRequest, type ParseLimits } from './parse.ts';
import type { FailOptions, RequestRecord, BatchItem } from './types.ts';

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
  const { entry, current } = log.open(req.method ?? 'GET', url.pathname, body.bytes);

  const fault = context.faults.take();
  if (fault?.kind === 'fail' || fault?.kind === 'failFor') {
    await answerInjectedFailure(context, request, res, entry, fault);
    return log.notify();
  }

  const read = await readBatch(context, req.method, url.pathname, request, body.tooLarge, entry);
  const batch = read.batch;
  let rejection = read.rejection;
  if (fault?.kind === 'drop') {
    entry.fault = 'drop';
    entry.outcome = 'dropped';
    entry.error = 'connection dropped without a response';
    if (batch && !rejection && fault.ingested) log.accept(entry, current(), batch, true);
    res.socket?.destroy();
    return log.notify();
  }

  if (batch && !rejection) {
    rejection = context.faults.rejection(batch);
    if (rejection) entry.fault = 'reject';
  }
  if (rejection) {
    entry.outcome = 'rejected';
    entry.error = rejection.message;
  }
  const overQuota = !rejection && context.faults.overQuota;
  if (overQuota) {
    entry.fault = 'overQuota';
    entry.outcome = 'over-quota';
  }
  /** Records what PostHog would keep; `late` when the client will not see the answer. */
  const ingest = (late: boolean) => {
    if (batch && !rejection && !overQuota) log.accept(entry, current(), batch, late);
  };

  const respond = () => {
    if (rejection) {
      entry.status = rejection.status;
      if (!res.destroyed) sendJson(res, rejection.status, rejectionBody(rejection));
    } else {
      ingest(false);
      entry.status = 200;
      if (!res.destroyed) sendJson(res, 200, { status: context.acceptance });
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

function rejectionBody(rejection: HttpError) {
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
  await parseBatch(request, entry, context.limits).catch(() => undefined);
  entry.status = fault.status;
  if (res.destroyed) return;
  if (options.raw !== undefined) {
    res.writeHead(fault.status, { 'Content-Length': String(Buffer.byteLength(options.raw)), ...headers });
    res.end(options.raw);
  } else {
    sendJson(res, fault.status, options.body ?? { type: 'injected_fault', detail: entry.error }, headers);
  }
}

/** The request's events, or why it is refused (405, 404, 413, or the body's HttpError). */
async function readBatch(
  context: HandlerContext,
  method: string | undefined,
  pathname: string,
  request: CaptureRequest,
  tooLarge: boolean,
  entry: RequestRecord,
): Promise<{ batch?: BatchItem[]; rejection?: HttpError }> {
  if (method !== 'POST') return { rejection: new HttpError(405, 'method_not_allowed', `${method} ${pathname}: only POST is served`) };
  if (!BATCH_PATHS.has(request.path)) {
    return { rejection: new HttpError(404, 'not_found', `${pathname} is not served by this capture server (only /batch/, /e/, /i/v0/e/, /capture/)`) };
  }
  if (tooLarge) return { rejection: new HttpError(413, 'payload_too_large', `request body exceeds ${context.limits.maxBodyBytes} bytes`) };
  try {
    return { batch: await parseBatch(request, entry, context.limits) };
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return { rejection: error };
  }
}

/**
 * `delayNext`: answers after `ms`. A client that gives up first (its request timeout) calls `onClientGone`:
 * PostHog would still have ingested the batch.
 */
function answerLater(context: HandlerContext, res: ServerResponse, ms: number, respond: () => void, onClientGone: () => void): void {
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
