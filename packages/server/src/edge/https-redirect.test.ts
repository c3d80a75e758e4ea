import { describe, expect, it } from 'vitest';
import { httpsRedirectLocation } from './https-redirect.js';

describe('httpsRedirectLocation', () => {
  it('keeps host, path and query; drops the HTTP port the client dialled', () => {
    expect(httpsRedirectLocation('api.example.com:8080', 443, '/a/b', 'x=1')).toBe('https://api.example.com/a/b?x=1');
    expect(httpsRedirectLocation('api.example.com', 8443, '/', '')).toBe('https://api.example.com:8443/');
    expect(httpsRedirectLocation('[::1]:80', 8443, '/p', '')).toBe('https://[::1]:8443/p');
    expect(httpsRedirectLocation('10.0.0.5', undefined, '/p', '')).toBe('https://10.0.0.5/p');
  });

  it('refuses Host headers that are not a plain host name (no open redirect)', () => {
    for (const host of [
      'evil.com@good.com',
      'good.com@evil.com',
      'evil.com/good.com',
      'evil.com\\good.com',
      'evil.com?x',
      'evil.com#x',
      'evil.com:80@x',
      'good.com evil.com',
      '-bad.com',
      'a..b',
      '.',
      '[::1',
      `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`,
      'a'.repeat(64),
      'caf\u00e9.com',
    ]) {
      expect(() => httpsRedirectLocation(host, 443, '/', ''), host).toThrow(/not a host name/);
    }
    expect(() => httpsRedirectLocation('', 443, '/', '')).toThrow(/no Host header/);
    expect(() => httpsRedirectLocation(':80', 443, '/', '')).toThrow(/no Host header/);
  });
});
