/**
 * A loopback TCP proxy in front of PostgreSQL that can silence one connection: its bytes stop flowing both
 * ways, as in a network partition or behind a dead NAT entry (no FIN, no RST). PostgreSQL's side stays open
 * whatever the client does, until the proxy closes: the server sees a client that went quiet.
 */
import { createServer, type Socket, connect } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Silences the connection whose upstream socket has this local port (pg_stat_activity.client_port). */
  silence(upstreamLocalPort: number): boolean;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
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
      for (const [client, upstream] of pairs) {
        if (upstream.localPort !== port) continue;
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
        client
          .removeAllListeners('close')
          .removeAllListeners('error')
          .on('error', () => undefined);
        return true;
      }
      return false;
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
