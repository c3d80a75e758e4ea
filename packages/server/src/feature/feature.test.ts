import { describe, expect, it } from 'vitest';
import { createFeatureStack, type Feature } from './feature.js';

function recording(log: string[], name: string, fail?: 'validate' | 'start'): Feature {
  return {
    name,
    validate: () => {
      if (fail === 'validate') throw new Error(`${name} refused`);
    },
    start: async () => {
      log.push(`start ${name}`);
      if (fail === 'start') throw new Error(`${name} failed`);
    },
    drain: () => void log.push(`drain ${name}`),
    close: async () => void log.push(`close ${name}`),
  };
}

describe('the feature stack', () => {
  it('starts in order, drains the last started first, then closes in reverse', async () => {
    const log: string[] = [];
    const stack = createFeatureStack();
    for (const name of ['a', 'b', 'c']) await stack.add(recording(log, name));
    expect(stack.features.map((f) => f.name)).toEqual(['a', 'b', 'c']);
    await stack.close();
    expect(log).toEqual(['start a', 'start b', 'start c', 'drain c', 'drain b', 'drain a', 'close c', 'close b', 'close a']);
    await stack.close();
    expect(log).toHaveLength(9);
  });

  it('closes the failing feature and those before it, in reverse, and throws the start error', async () => {
    const log: string[] = [];
    const stack = createFeatureStack();
    await stack.add(recording(log, 'a'));
    await expect(stack.add(recording(log, 'b', 'start'))).rejects.toThrow('b failed');
    expect(log).toEqual(['start a', 'start b', 'drain b', 'drain a', 'close b', 'close a']);
    expect(stack.features).toEqual([]);
  });

  it('runs validate() before start, and a refusal closes what started', async () => {
    const log: string[] = [];
    const stack = createFeatureStack();
    await stack.add(recording(log, 'a'));
    await expect(stack.add(recording(log, 'b', 'validate'))).rejects.toThrow('b refused');
    expect(log).toEqual(['start a', 'drain b', 'drain a', 'close b', 'close a']);
  });

  it('closes every feature when one close fails, and throws that error after', async () => {
    const log: string[] = [];
    const errors: string[] = [];
    const stack = createFeatureStack((feature) => errors.push(feature.name));
    await stack.add(recording(log, 'a'));
    await stack.add({ ...recording(log, 'b'), close: async () => Promise.reject(new Error('b close')) });
    await stack.add(recording(log, 'c'));
    await expect(stack.close()).rejects.toThrow('b close');
    expect(log.filter((l) => l.startsWith('close'))).toEqual(['close c', 'close a']);
    expect(errors).toEqual(['b']);
  });

  it('names the feature whose start is under way', async () => {
    const stack = createFeatureStack();
    let seen: string | undefined;
    await stack.add({ name: 'store', start: async () => void (seen = stack.starting), close: async () => undefined });
    expect(seen).toBe('store');
    expect(stack.starting).toBeUndefined();
  });
});
