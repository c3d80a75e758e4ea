/** A listen address: `8080`, `:8080`, `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`. */
export interface ListenAddress {
  host: string;
  port: number;
}

const DEFAULT_HOST = '0.0.0.0';

/** The address, or null when the text is not one. Port 0 means "pick a free port". */
export function parseListenAddress(value: string | number): ListenAddress | null {
  const text = String(value).trim();
  let host = DEFAULT_HOST;
  let portText = text;
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
  } else if (text.includes(':')) {
    const at = text.lastIndexOf(':');
    host = text.slice(0, at) || DEFAULT_HOST;
    portText = text.slice(at + 1);
    if (host.includes(':')) return null; // bare IPv6 must be bracketed
  }
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port > 65535) return null;
  return { host, port };
}

/** `host:port` with IPv6 hosts bracketed, for URLs and messages. */
export function formatHostPort(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
