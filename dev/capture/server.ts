/** `startCaptureServer`: the HTTP server on loopback, and the CaptureServer a test drives it with. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Faults } from './faults.ts';
import { handleCapture, sendJson, type HandlerContext } from './handler.ts';
import { CaptureLog } from './log.ts';
import type { CaptureServer, CaptureServerOptions } from './types.ts';

export async function startCaptureServer(options: CaptureServerOptions = {}): Promise<CaptureServer> {
  const faults = new Faults();
  const log = new CaptureLog(options, () => faults.pending);
  const context: HandlerContext = {
    log,
    faults,
    limits: {
      apiKey: options.apiKey,
      maxEventBytes: options.maxEventBytes ?? 1_000_000,
      maxAiEventBytes: options.maxAiEventBytes ?? 8_388_608,
      maxBodyBytes: options.maxBodyBytes ?? 20_000_000,
      keepUuids: log.keepEvents,
    },
    acceptance: options.acceptance ?? 1,
    timers: new Set(),
  };
  const server = createServer((req, res) => readRequest(context, req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed = false;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get events() {
      return log.events;
    },
    get accepted() {
      return log.accepted;
    },
    get requests() {
      return log.requests;
    },
    get pendingFaults() {
      return faults.pending;
    },
    byUuid: () => log.byUuid(),
    countsByUuid: ({ ignoreLate = false } = {}) => new Map([...log.counts(ignoreLate)].map(([uuid, { count }]) => [uuid, count])),
    duplicates: ({ ignoreLate = false } = {}) => [...log.counts(ignoreLate)].filter(([, c]) => c.count > 1).map(([uuid, c]) => ({ uuid, ...c })),
    waitFor: (condition, waitOptions = {}) => log.waitUntil(() => log.events, condition, 'accepted events', waitOptions),
    waitForRequests: (condition, waitOptions = {}) => log.waitUntil(() => log.requests, condition, 'requests', waitOptions),
    failNext: (n, status, failOptions = {}) => faults.failNext(n, status, failOptions),
    failFor: (ms, status, failOptions = {}) => faults.failFor(ms, status, failOptions),
    rejectEventsWhere: (predicate, rejectOptions = {}) => faults.rejectEventsWhere(predicate, rejectOptions),
    verdictWhere: (predicate, verdict, verdictOptions = {}) => faults.verdictWhere(predicate, verdict, verdictOptions),
    delayNext: (n, ms) => faults.delayNext(n, ms),
    dropNext: (n, { ingested = false } = {}) => faults.dropNext(n, ingested),
    overQuota: (enabled = true) => faults.setOverQuota(enabled),
    clearFaults: () => faults.clear(),
    reset() {
      log.reset();
      faults.clear();
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of context.timers) clearTimeout(timer);
      context.timers.clear();
      log.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Reads the body (buffering at most maxBodyBytes, draining the rest), then handles the request. */
function readRequest(context: HandlerContext, req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let tooLarge = false;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > context.limits.maxBodyBytes) {
      tooLarge = true;
      chunks.length = 0; // keep draining, stop buffering
    } else {
      chunks.push(chunk);
    }
  });
  req.on('end', () => {
    handleCapture(context, req, res, { raw: Buffer.concat(chunks), tooLarge, bytes }).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, { type: 'server_error', detail: String(error) });
    });
  });
  req.on('error', () => res.destroy());
}
