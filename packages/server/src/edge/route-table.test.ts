import { describe, expect, it } from 'vitest';
import { RouteTable, type EdgeRoute } from './route-table.js';

const route = (path: string, host?: string): EdgeRoute => ({ path, host, label: `${host ?? ''}${path}`, auth: 'none', maxBodyBytes: 0, handle: () => undefined });
const label = (table: RouteTable, host: string, path: string) => table.match(host, path)?.route.label ?? null;

describe('route table', () => {
  it('matches by the longest prefix, on segment boundaries only', () => {
    const table = new RouteTable([route('/api'), route('/api/v2/'), route('/')]);
    expect(table.match('h', '/api')).toMatchObject({ route: { label: '/api' }, rest: '' });
    expect(table.match('h', '/api/x')).toMatchObject({ route: { label: '/api' }, rest: '/x' });
    expect(table.match('h', '/api/v2/x')).toMatchObject({ route: { label: '/api/v2/' }, rest: '/x' });
    expect(label(table, 'h', '/apix')).toBe('/');
  });

  it('ignores the host when no route is bound to one, whatever the client sends as Host', () => {
    const table = new RouteTable([route('/api')]);
    for (const host of ['', 'shop.example', 'shop.example:8443', '[::1]:443', 'a\u0000b', ':', '[', 'x'.repeat(5000)]) {
      expect(label(table, host, '/api/x')).toBe('/api');
    }
  });

  it('prefers a route bound to the request host (port and IPv6 brackets aside) at the same prefix, and no other host reaches it', () => {
    const table = new RouteTable([route('/api'), route('/api', 'shop.example'), route('/admin', 'shop.example'), route('/v6', '::1')]);
    expect(label(table, 'shop.example', '/api/x')).toBe('shop.example/api');
    expect(label(table, 'shop.example:8443', '/api/x')).toBe('shop.example/api');
    expect(label(table, 'other.example', '/api/x')).toBe('/api');
    expect(label(table, '[::1]:443', '/v6/x')).toBe('::1/v6');
    expect(label(table, '[::1]', '/v6')).toBe('::1/v6');
    // Hosts that only look like the bound one do not reach its routes.
    for (const host of ['shop.example.evil', 'evil.shop.example', 'shop.example:', 'shop.example:8443:1', '[shop.example]x', 'SHOP.EXAMPLE.', '', '::1']) {
      expect(label(table, host, '/admin'), host).toBe(null);
    }
  });
});
