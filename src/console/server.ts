/**
 * `startConsole`: the console on a port of its own (`posthog-outbox console`). On loopback by default, where it
 * answers only to loopback host names (a DNS-rebinding page names its own). Any other address is refused
 * without a token, before anything listens: the name is resolved first, and the address bound is checked again.
 */
import { lookup } from 'node:dns/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OutboxError } from '../errors/errors.ts';
import { type ConsoleHandler, createConsoleHandler } from './handler.ts';
import { isLoopback, LOOPBACK_HOSTS } from './security.ts';
import { CONSOLE_SETTINGS } from './settings-schema.ts';
import type { ConsoleOptions } from './settings.ts';

export interface ConsoleServerOptions extends ConsoleOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 9465; 0: any free port). */
  port?: number;
}

export interface ConsoleServer {
  /** `http://127.0.0.1:9465/` (with the base path). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function refuseBeyondLoopback(host: string): never {
  throw new OutboxError(
    'required',
    'token',
    `the console would listen on ${host}, beyond this machine: give it a token (the environment variable is better than the flag, which shows in ps), or keep the default host 127.0.0.1 and reach it through an SSH tunnel`,
  );
}

/** Starts the console; OutboxError (nothing listens) on bad options, or beyond loopback without a token. */
export async function startConsole(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const host = options.host ?? CONSOLE_SETTINGS.host.default;
  const port = options.port ?? CONSOLE_SETTINGS.port.default;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new OutboxError('invalid', 'port', `must be a whole number from 0 to 65535, got ${port}`);
  const tokenless = options.token === undefined || options.token === '';
  let loopback = false;
  try {
    loopback = (await lookup(host, { all: true })).every(({ address }) => isLoopback(address));
  } catch (error) {
    throw new OutboxError('invalid', 'host', `cannot be resolved: ${(error as Error).message}`);
  }
  if (tokenless && !loopback) refuseBeyondLoopback(host);
  const handler: ConsoleHandler = createConsoleHandler({
    ...options,
    // No token: a page of another site that rebinds its name to 127.0.0.1 must not read the console.
    allowedHosts: options.allowedHosts ?? (tokenless ? [...LOOPBACK_HOSTS, host.replace(/^\[|\]$/g, '')] : undefined),
  });
  const server = createServer(handler);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    if (tokenless && !isLoopback(address.address)) refuseBeyondLoopback(address.address);
  } catch (error) {
    server.close();
    await handler.close();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}${options.basePath?.replace(/\/$/, '') ?? ''}/`,
    port: address.port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await handler.close();
    },
  };
}
