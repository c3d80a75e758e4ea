import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.js';
import { HOSTILE_PIECES, HOSTILE_SEGMENTS, UPSTREAM_MODELS, under } from '../../test/helpers/upstream-models.js';
import { normalizeRequestTarget } from './request-target.js';
import { RouteTable, type EdgeRoute } from './route-table.js';

const norm = (target: string, method = 'GET') => normalizeRequestTarget(target, method);
const refusal = (target: string, method = 'GET') => {
  try {
    norm(target, method);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('REQUEST_TARGET_INVALID');
    return (error as AppError).message;
  }
  throw new Error(`${target} was accepted`);
};

describe('request-target normalisation', () => {
  it.each([
    ['/', '/'],
    ['/api/x', '/api/x'],
    ['/api/x/', '/api/x/'],
    ['/open/../api/x', '/api/x'],
    ['/open/%2e%2e/api/x', '/api/x'],
    ['/open/.%2E/api/x', '/api/x'],
    ['/open//../api/x', '/api/x'],
    ['//open///x//', '/open/x/'],
    ['/a/./b/.', '/a/b/'],
    ['/a/b/..', '/a/'],
    ['/a/..', '/'],
    ['/%41pi/%7euser', '/Api/~user'],
    ['/a%2db%5f', '/a-b_'],
    ['/a%3fb%3Bc', '/a%3Fb%3Bc'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/caf\u00c3\u00a9', '/caf%C3%A9'],
    ['/a;jsessionid=1/b', '/a;jsessionid=1/b'],
    ['/...', '/...'],
    ['/a..b/..c', '/a..b/..c'],
    ['/%2541', '/%2541'],
  ])('%s → %s', (target, path) => {
    expect(norm(target).path).toBe(path);
  });

  it('keeps the query string exactly', () => {
    expect(norm('/a/../b?x=../%2e%2e&y=%2F#z')).toEqual({ path: '/b', query: 'x=../%2e%2e&y=%2F#z' });
  });

  it('takes the authority of an absolute-form target, and normalises its path', () => {
    expect(norm('http://Example.COM:8080/open/../api?q=1')).toEqual({ path: '/api', query: 'q=1', authority: 'example.com:8080' });
    expect(norm('https://h')).toEqual({ path: '/', query: '', authority: 'h' });
    expect(norm('http://h?x')).toEqual({ path: '/', query: 'x', authority: 'h' });
    expect(norm('http://[::1]:80/a').authority).toBe('[::1]:80');
  });

  it.each([
    ['/..', 'above the root'],
    ['/a/../..', 'above the root'],
    ['/%2e%2e/x', 'above the root'],
    ['/open/..;/api', ';'],
    ['/open/.;x/api', ';'],
    ['/open/%2e%2e;/api', ';'],
    ['/open/..%3b/api', ';'],
    ['/a%2fb', '"/"'],
    ['/a%2Fb', '"/"'],
    ['/a%5cb', '"\\"'],
    ['/a\\b', '"\\"'],
    ['/a%00b', 'NUL'],
    ['/a%0ab', 'control'],
    ['/a%7fb', 'control'],
    ['/%252e%252e/x', 'double-encoded'],
    ['/%25%32%65%25%32%65/x', 'double-encoded'],
    ['/%252F', 'double-encoded'],
    ['/a%zz', 'two hex digits'],
    ['/a%2', 'two hex digits'],
    ['/a%', 'two hex digits'],
    ['/%c0%ae%c0%ae/x', 'UTF-8'],
    ['/%e0%80%ae', 'UTF-8'],
    ['/%ff', 'UTF-8'],
    ['/%c3', 'UTF-8'],
    ['/\u00ff', 'UTF-8'],
    ['/a#b', '"#"'],
    ['a/b', 'start with "/"'],
    ['ftp://h/a', 'start with "/"'],
    ['http://user:pw@h/a', 'valid host'],
    ['http:///a', 'valid host'],
    ['*', 'OPTIONS'],
  ])('refuses %s', (target, why) => {
    expect(refusal(target)).toContain(why);
  });

  it('accepts * for OPTIONS only', () => {
    expect(norm('*', 'OPTIONS').path).toBe('*');
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...HOSTILE_PIECES), { maxLength: 12 }), (pieces) => {
        let once;
        try {
          once = norm(`/${pieces.join('')}`);
        } catch {
          return;
        }
        const target = once.query ? `${once.path}?${once.query}` : once.path;
        expect(norm(target)).toEqual(once);
      }),
      { numRuns: 3000 },
    );
  });

  // The routing the edge does after normalising, with the upstream path a proxy route builds.
  const route = (path: string, auth: EdgeRoute['auth']): EdgeRoute => ({ path, label: path, auth, maxBodyBytes: 0, handle: () => undefined });
  const table = new RouteTable([route('/open', 'none'), route('/api', 'required'), route('/n/int', 'none')]);
  const upstreamBase: Record<string, string> = { '/open': '/open', '/n/int': '/internal' };

  it('never lets a target routed to an auth: none prefix reach /api at any modelled upstream', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('/open/', '/open', '/n/int/', '/'),
        fc.array(fc.constantFrom(...HOSTILE_SEGMENTS), { minLength: 1, maxLength: 8 }),
        fc.constantFrom('/', '//'),
        fc.array(fc.constantFrom(...HOSTILE_PIECES), { maxLength: 6 }),
        (start, segments, separator, pieces) => {
          let target;
          try {
            target = norm(start + segments.join(separator) + pieces.join(''));
          } catch {
            return; // refused at the edge
          }
          const found = table.match('h', target.path);
          if (!found || found.route.auth !== 'none') return;
          const base = upstreamBase[found.route.path]!;
          const sent = (base + found.rest || '/') + (target.query ? `?${target.query}` : '');
          for (const [name, model] of Object.entries(UPSTREAM_MODELS)) {
            const seen = model(sent);
            if (seen === null) continue; // that upstream refuses it
            expect(under(seen, '/api'), `${sent} → ${name}: ${seen}`).toBe(false);
            if (found.route.path === '/n/int') expect(under(seen, '/internal'), `${name}: ${seen}`).toBe(true);
          }
        },
      ),
      { numRuns: 20_000 },
    );
  });
});
