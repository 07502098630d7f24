/**
 * The worker's HTTP endpoint: `/healthz` (ready only when the database, the outbox table and pg-boss answer)
 * and `/metrics`. `/healthz` says which check failed, and why only in the check's own words (`Unready`):
 * never a database's error text, which names hosts, roles, databases; that goes to the worker's log through
 * `onCheckFailed`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthServer {
  /** `http://host:port` it listens on. */
  readonly url: string;
  close(): Promise<void>;
}

class CheckTimeout extends Error {}

/** A check's failure with a reason fit for `/healthz`'s body (e.g. `locked: ...`), written by the check itself. */
export class Unready extends Error {
  readonly reason: string;
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'Unready';
    this.reason = reason;
  }
}

/** Runs `check` with a time limit: a database that hangs is as unready as one that refuses. */
async function within<T>(ms: number, check: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      check(),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new CheckTimeout(`no answer within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startHealthServer(options: {
  port: number;
  host: string;
  registry: Registry;
  /** Named checks; each resolves when its dependency answers. */
  checks: Record<string, () => Promise<unknown>>;
  /** A check failed (for the log; the response only says `down` or `timeout`). */
  onCheckFailed?: (name: string, error: unknown) => void;
}): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      void (async () => {
        const results: Record<string, string> = {};
        await Promise.all(
          Object.entries(options.checks).map(async ([name, check]) => {
            try {
              await within(2_000, check);
              results[name] = 'ok';
            } catch (error) {
              results[name] = error instanceof CheckTimeout ? 'timeout' : error instanceof Unready ? error.reason : 'down';
              options.onCheckFailed?.(name, error instanceof Unready ? (error.cause ?? error) : error);
            }
          }),
        );
        const ok = Object.values(results).every((r) => r === 'ok');
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'unavailable', checks: results }));
      })();
      return;
    }
    if (path === '/metrics') {
      options.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text))
        .catch((error: unknown) => {
          options.onCheckFailed?.('metrics', error);
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable: the database did not answer (see the worker log)\n');
        });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
