/**
 * A TCP proxy a test puts in front of a shared database server, so that it can cut the
 * connection (refuse new ones and reset open ones, or accept and never answer) without
 * stopping the server other tests use.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** 'refuse': close the port and reset every open connection. 'blackhole': accept, never forward. */
  cut(mode?: 'refuse' | 'blackhole'): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let mode: 'open' | 'blackhole' = 'open';
  let port = 0;

  const onConnection = (client: Socket) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (mode === 'blackhole') return;
    const upstream = connect(targetPort, targetHost);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  };

  let server: Server = createServer(onConnection);
  const listen = (s: Server, p: number) =>
    new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.listen(p, '127.0.0.1', () => resolve((s.address() as { port: number }).port));
    });
  port = await listen(server, 0);

  const resetAll = () => {
    for (const socket of sockets) socket.resetAndDestroy();
    sockets.clear();
  };

  return {
    get port() {
      return port;
    },
    async cut(cutMode = 'refuse') {
      resetAll();
      if (cutMode === 'blackhole') {
        mode = 'blackhole';
        return;
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async restore() {
      resetAll();
      mode = 'open';
      if (!server.listening) {
        server = createServer(onConnection);
        await listen(server, port);
      }
    },
    async close() {
      resetAll();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
