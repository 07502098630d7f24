/** Hosts that are not PostHog, on loopback, for tests that point a worker at the wrong place. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * Registers the hooks that close every host after each test, and returns how to start one: an HTTP server
 * answering every request with `reply(method)`, and the methods it was asked with.
 */
export function notPostHogHosts(): (reply: (method: string) => Reply) => Promise<{ url: string; methods: string[] }> {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
  return async (reply) => {
    const methods: string[] = [];
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        methods.push(req.method ?? '?');
        const r = reply(req.method ?? 'GET');
        res.writeHead(r.status, r.headers);
        res.end(r.body ?? '');
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, methods };
  };
}
