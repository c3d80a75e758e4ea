/**
 * Debian's `pebble` ACME test CA for tests: its own TLS certificate made with openssl, a mock
 * DNS (pebble-challtestsrv) that points every name at 127.0.0.1, HTTP-01 validation on the port
 * the test's minigate listens on for plain HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { get } from './https.js';
import { makeCa, makeLeaf } from './pki.js';

export interface Pebble {
  directory: string;
  /** The CA file that verifies pebble's own HTTPS (tls.acme.caFile). */
  caFile: string;
  /** Pebble's issuing root, to verify the certificates it issues. */
  root(): Promise<string>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function waitFor(url: string, ca: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      get(url, { ca }).then(
        (r) => (r.status < 500 ? resolve() : retry()),
        () => retry(),
      );
    };
    const retry = () => (Date.now() > deadline ? reject(new Error(`${url} did not come up`)) : setTimeout(attempt, 100));
    attempt();
  });
}

/** Starts pebble validating HTTP-01 on 127.0.0.1:`httpPort`. */
export async function startPebble(httpPort: number): Promise<Pebble> {
  const ca = makeCa('Pebble Listener');
  const leaf = makeLeaf(ca, ['localhost', '127.0.0.1'], { label: 'pebble' });
  const [port, managementPort, dnsPort, tlsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const config = path.join(ca.dir, 'pebble.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: leaf.fullchain,
        privateKey: leaf.key,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const caPem = (await import('node:fs')).readFileSync(ca.rootPem, 'utf8');
  let dns: ChildProcess | undefined;
  let pebble: ChildProcess | undefined;
  let output = '';

  const start = async () => {
    dns = spawn('pebble-challtestsrv', ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${await freePort()}`], { stdio: 'ignore' });
    pebble = spawn('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], {
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    pebble.stdout?.on('data', (d) => (output += d));
    pebble.stderr?.on('data', (d) => (output += d));
    await waitFor(`https://127.0.0.1:${port}/dir`, caPem).catch((error: Error) => {
      throw new Error(`${error.message}\n${output}`);
    });
  };
  const stop = async () => {
    for (const child of [pebble, dns]) {
      if (child && child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }
  };
  await start();
  return {
    directory: `https://127.0.0.1:${port}/dir`,
    caFile: ca.rootPem,
    root: async () => (await get(`https://127.0.0.1:${managementPort}/roots/0`, { ca: caPem })).body,
    stop,
    start,
  };
}
