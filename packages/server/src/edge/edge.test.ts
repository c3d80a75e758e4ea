/**
 * The edge refuses a route to a built-in service it was not given. The config check refuses such
 * a route first; this guards a config built another way (the old failure was a raw TypeError).
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import type { SessionService } from '../auth/index.js';
import { systemClock } from '../core/clock.js';
import { silentLogger } from '../core/logger.js';
import { createEdge } from './edge.js';

describe('createEdge', () => {
  it('names the route when its service is not running', () => {
    const config = loadConfig({
      text: 'routes:\n  - path: /live\n    service: channel\napps:\n  - appid: wx0123456789abcdef\n    secret: s3cret\n',
      file: 'minigate.yaml',
      env: {},
    });
    const build = () =>
      createEdge(config, { logger: silentLogger(), clock: systemClock, sessions: {} as SessionService, services: [], ready: async () => undefined });
    expect(build).toThrow(new Error('routes[0].service: the channel service is not running (is it enabled?)'));
    expect(build).not.toThrow(TypeError);
  });
});
