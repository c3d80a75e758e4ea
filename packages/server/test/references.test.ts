/**
 * Every document a file cites is in the repository. Comments, tests and docs once pointed at design
 * notes that lived outside it (a sibling `shared` folder, a fault catalogue by id, a path on a
 * build machine); a reader of the repository could follow none of them. What the project relies
 * on is in `docs/` (docs/reliability.md, docs/wechat-api.md), and this test keeps it that way:
 * no tracked file names those outside documents, and every relative link in a markdown file leads
 * to a file that exists here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** Bigger files are data (a lockfile), not prose anyone cites from. */
const MAX_SCANNED_BYTES = 2 * 1024 * 1024;

function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' });
  return out
    .split('\0')
    .filter((f) => f !== '' && !f.split('/').some((part) => part === 'node_modules' || part === 'dist'))
    .filter((f) => existsSync(path.join(ROOT, f)) && statSync(path.join(ROOT, f)).isFile());
}

function readText(file: string): string | null {
  const full = path.join(ROOT, file);
  if (statSync(full).size > MAX_SCANNED_BYTES) return null;
  const text = readFileSync(full, 'utf8');
  return text.includes('\0') ? null : text;
}

// Built from pieces so that this file does not match itself.
const FORBIDDEN: Array<{ what: string; pattern: RegExp }> = [
  { what: 'a path into the shared design folder', pattern: new RegExp(['\\.\\.', 'shared', ''].join('/')) },
  { what: 'an absolute path on a build machine', pattern: new RegExp(['', 'work', 'shared'].join('/')) },
  ...['RELIA' + 'BILITY', 'DES' + 'IGN', 'STYLE'].map((name) => ({
    what: `${name}.md, which is not in the repository`,
    pattern: new RegExp(`\\b${name}\\.md\\b`),
  })),
  { what: 'a fault-catalogue id (say the fault, or cite docs/reliability.md)', pattern: new RegExp(`\\b${'RELIA'}BILITY\\b`) },
  { what: 'a design-note section (cite a file in docs/)', pattern: new RegExp(`\\b${'DES'}IGN\\s+"`) },
];

/** Links in markdown outside code: inline `[text](target)` and reference definitions `[id]: target`. */
function markdownLinks(text: string): Array<{ line: number; target: string }> {
  const lines = text.split('\n');
  const links: Array<{ line: number; target: string }> = [];
  let fenced = false;
  lines.forEach((raw, i) => {
    if (/^\s*(```|~~~)/.test(raw)) {
      fenced = !fenced;
      return;
    }
    if (fenced) return;
    const line = raw.replace(/`[^`]*`/g, '');
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ line: i + 1, target: m[1]! });
    const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(line);
    if (def) links.push({ line: i + 1, target: def[1]! });
  });
  return links;
}

/** Null when the target is outside the repository's files (a URL, an anchor) or resolves inside it. */
function brokenLink(file: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#') || target.startsWith('//')) return null;
  const bare = decodeURIComponent(target.replace(/[?#].*$/, ''));
  if (bare === '') return null;
  const resolved = bare.startsWith('/') ? path.join(ROOT, bare) : path.resolve(ROOT, path.dirname(file), bare);
  const inside = path.relative(ROOT, resolved);
  if (inside.startsWith('..') || path.isAbsolute(inside)) return 'leads out of the repository';
  return existsSync(resolved) ? null : 'does not exist';
}

describe('references', () => {
  const files = trackedFiles();

  it('finds the tracked files', () => {
    expect(files).toContain('README.md');
    expect(files).toContain('docs/reliability.md');
  });

  it('no file cites a document that is not in the repository', () => {
    const found: string[] = [];
    for (const file of files) {
      const text = readText(file);
      if (text === null) continue;
      text.split('\n').forEach((line, i) => {
        for (const { what, pattern } of FORBIDDEN) {
          if (pattern.test(line)) found.push(`${file}:${i + 1}: ${what}: ${line.trim()}`);
        }
      });
    }
    expect(found).toEqual([]);
  });

  it('every relative link in a markdown file leads to a file in the repository', () => {
    const broken: string[] = [];
    for (const file of files.filter((f) => f.endsWith('.md'))) {
      const text = readText(file);
      if (text === null) continue;
      for (const { line, target } of markdownLinks(text)) {
        const why = brokenLink(file, target);
        if (why) broken.push(`${file}:${line}: ${target} ${why}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('catches what it is meant to catch', () => {
    const cites = [`see ..${'/shared/'} for the plan`, `RELIA${'BILITY'} P1`, `DES${'IGN'}.md`, `DES${'IGN'} "Identity"`];
    for (const cite of cites) expect(FORBIDDEN.some(({ pattern }) => pattern.test(cite)), cite).toBe(true);
    expect(FORBIDDEN.some(({ pattern }) => pattern.test('docs/reliability.md#proxy'))).toBe(false);
    expect(markdownLinks('[a](docs/x.md) `[b](no.md)`\n```\n[c](no.md)\n```\n[d]: ../e.md').map((l) => l.target)).toEqual([
      'docs/x.md',
      '../e.md',
    ]);
    expect(brokenLink('README.md', 'docs/edge.md#limits')).toBeNull();
    expect(brokenLink('docs/edge.md', 'limits.md')).toBeNull();
    expect(brokenLink('docs/edge.md', 'https://example.com/x.md')).toBeNull();
    expect(brokenLink('README.md', 'docs/nothing-here.md')).toBe('does not exist');
    expect(brokenLink('README.md', '../elsewhere/x.md')).toBe('leads out of the repository');
  });
});
