/**
 * A loopback TCP proxy in front of PostgreSQL that can silence connections: their bytes stop flowing both
 * ways, as in a network partition or behind a dead NAT entry (no FIN, no RST). PostgreSQL's side stays open
 * whatever the client does, until the proxy closes: the server sees a client that went quiet.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Silences the connection whose upstream socket has this local port (pg_stat_activity.client_port). */
  silence(upstreamLocalPort: number): boolean;
  /**
   * A partition for the connections whose first bytes from the client (PostgreSQL's startup message: user,
   * database, application_name) contain `marker`: those open now are silenced, and so is every new one
   * until `heal()`. Connections silenced stay silent after it, as they do behind a NAT that forgot them.
   */
  partition(marker: string): void;
  heal(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** The client's first bytes (its startup message). */
  first: Buffer | undefined;
}

function silenced(pair: Pair): void {
  const { client, upstream } = pair;
  client.unpipe(upstream);
  upstream.unpipe(client);
  client.pause();
  upstream.pause();
  client
    .removeAllListeners('data')
    .removeAllListeners('close')
    .removeAllListeners('error')
    .on('error', () => undefined);
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let marker: Buffer | undefined;
  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    const pair: Pair = { client, upstream, first: undefined };
    pairs.add(pair);
    client.once('data', (chunk: Buffer) => {
      pair.first = chunk;
      if (marker && chunk.includes(marker)) return silenced(pair);
      upstream.write(chunk);
      client.pipe(upstream);
    });
    upstream.pipe(client);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    silence(port) {
      for (const pair of pairs) {
        if (pair.upstream.localPort !== port) continue;
        silenced(pair);
        return true;
      }
      return false;
    },
    partition(text) {
      marker = Buffer.from(text);
      for (const pair of pairs) if (pair.first?.includes(marker)) silenced(pair);
    },
    heal() {
      marker = undefined;
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
