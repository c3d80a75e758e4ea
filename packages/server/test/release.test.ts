/**
 * The release: the four packages' manifests carry what a registry user needs and share one
 * version, the LICENSE travels with each, the CHANGELOG has its Unreleased section, and the
 * release script's version arithmetic (scripts/release.mjs; `npm run release -- --dry-run patch`
 * runs it whole, test:packages installs what it packs).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (file: string) => readFileSync(`${root}${file}`, 'utf8');

interface Manifest {
  name: string;
  version: string;
  [key: string]: any;
}
interface ReleaseScript {
  PACKAGES: string[];
  nextVersion(current: string, bump: string | undefined): string;
  bumpManifests(manifests: Manifest[], version: string): Manifest[];
  changelogHas(text: string, version: string): boolean;
}
const script = (await import(`${root}scripts/release.mjs`)) as ReleaseScript;
const manifests = script.PACKAGES.map((p) => JSON.parse(read(`${p}/package.json`)) as Manifest);

describe('packages', () => {
  it.each(script.PACKAGES)('%s: license, LICENSE file, README, engines, repository, types, exports, no build leftovers in files', (dir) => {
    const m = JSON.parse(read(`${dir}/package.json`)) as Manifest;
    expect(m.license).toBe('MIT');
    expect(read(`${dir}/LICENSE`)).toBe(read('LICENSE'));
    expect(read(`${dir}/README.md`)).toMatch(new RegExp(`^# ${m.name}\\n`));
    expect(m.engines.node).toBe(JSON.parse(read('package.json')).engines.node);
    expect(m.repository).toMatchObject({ type: 'git', directory: dir });
    expect(m.types).toMatch(/\.d\.ts$/);
    expect(m.exports['.'].types).toBe(m.types);
    expect(m.files).toEqual(expect.arrayContaining(['!dist/.tsbuildinfo', '!**/*.test.ts']));
  });

  it('share one version, and depend on each other at exactly it', () => {
    const names = new Set(manifests.map((m) => m.name));
    for (const m of manifests) {
      expect(m.version).toBe(manifests[0]!.version);
      for (const [dep, range] of Object.entries({ ...m.dependencies })) if (names.has(dep)) expect(range).toBe(m.version);
    }
  });

  it('LICENSE is MIT, minigate contributors, 2026; the CHANGELOG has Unreleased (with the listen.http break) and the current version', () => {
    expect(read('LICENSE')).toMatch(/^MIT License\n\nCopyright \(c\) 2026 minigate contributors\n/);
    const changelog = read('CHANGELOG.md');
    expect(changelog).toMatch(/^## \[Unreleased\]\n\n### Breaking\n- `listen\.http` no longer gets a silent default/m);
    expect(script.changelogHas(changelog, manifests[0]!.version)).toBe(true);
  });
});

describe('release script', () => {
  it('bumps major, minor, patch and takes an explicit higher version', () => {
    expect(script.nextVersion('0.1.0', 'patch')).toBe('0.1.1');
    expect(script.nextVersion('0.1.9', 'minor')).toBe('0.2.0');
    expect(script.nextVersion('0.9.3', 'major')).toBe('1.0.0');
    expect(script.nextVersion('0.1.0', '0.10.0')).toBe('0.10.0');
  });

  it.each([
    ['0.1.0', undefined, /expected major, minor, patch or X\.Y\.Z/],
    ['0.1.0', 'huge', /expected major/],
    ['0.1.0', '0.1.0', /not above/],
    ['0.1.0', '0.0.9', /not above/],
    ['0.1.0', '1.0', /expected major/],
    ['0.1.0', '1.0.0-beta.1', /expected major/],
    ['x', 'patch', /not X\.Y\.Z/],
  ])('refuses %s → %s', (current, bump, message) => {
    expect(() => script.nextVersion(current, bump as string)).toThrow(message);
  });

  it('moves every package and every sibling dependency, and nothing else', () => {
    const out = script.bumpManifests(manifests, '0.2.0');
    const server = out.find((m) => m.name === 'minigate')!;
    expect(out.map((m) => m.version)).toEqual(['0.2.0', '0.2.0', '0.2.0', '0.2.0']);
    expect(server.dependencies['minigate-protocol']).toBe('0.2.0');
    expect(server.dependencies['minigate-client']).toBe('0.2.0');
    expect(server.dependencies.zod).toBe(manifests.find((m) => m.name === 'minigate')!.dependencies.zod);
    expect(out.find((m) => m.name === 'minigate-client')!.dependencies['minigate-protocol']).toBe('0.2.0');
    expect(manifests[0]!.version).not.toBe('0.2.0'); // the input is not changed
  });

  it('finds a version section only as a heading', () => {
    expect(script.changelogHas('## [0.2.0] - 2026-12-06\n', '0.2.0')).toBe(true);
    expect(script.changelogHas('see [0.2.0]\n## [0.2.01]\n', '0.2.0')).toBe(false);
    expect(script.changelogHas('## [0x2x0]\n', '0.2.0')).toBe(false);
  });
});
