import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, infoLineWriter } from './logger.js';

function capture(level: 'info' | 'warn' = 'info') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, logger: createLogger({ level, destination }) };
}

describe('infoLineWriter', () => {
  const fields = () => ({
    requestId: '36b55af666d9c059',
    client: '127.0.0.1',
    method: 'GET',
    route: undefined,
    path: '/a "quoted"\\path\n\u2028\ud800',
    status: 200,
    bytes: 225,
    ms: 0.4,
    upstreamMs: undefined,
    ua: 'Mozilla/5.0 <script>',
    code: undefined,
  });

  it('writes the line pino writes for logger.info(fields, msg), but for the time', async () => {
    const viaPino = capture();
    viaPino.logger.info(fields(), 'request');
    const direct = capture();
    infoLineWriter(direct.logger, 'request')(fields());
    await new Promise((resolve) => setImmediate(resolve));
    const [a, b] = [viaPino.lines.join(''), direct.lines.join('')];
    expect(a.endsWith('\n') && b.endsWith('\n')).toBe(true);
    const strip = (line: string) => ({ ...(JSON.parse(line) as Record<string, unknown>), time: 0 });
    expect(strip(b)).toEqual(strip(a));
    // Same keys in the same order (collectors may show them as written).
    expect(Object.keys(JSON.parse(b) as object)).toEqual(Object.keys(JSON.parse(a) as object));
    expect(Math.abs((JSON.parse(b) as { time: number }).time - Date.now())).toBeLessThan(5000);
  });

  it('writes nothing when info lines are off', async () => {
    const { lines, logger } = capture('warn');
    infoLineWriter(logger, 'request')(fields());
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toEqual([]);
  });
});
