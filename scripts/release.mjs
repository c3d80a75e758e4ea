#!/usr/bin/env node
// npm run release -- major|minor|patch|X.Y.Z [--dry-run]
// Checks the tree, bumps the four packages to one version (their dependencies on each other too),
// builds and packs them into dist-release/. Publishing stays the maintainer's step: the script
// prints the commands. The four packages always share a version, so a client and a server of the
// same number speak the same protocol.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGES = ['packages/protocol', 'packages/sandbox', 'packages/server', 'packages/client'];
const SEMVER = /^(\d+)\.(\d+)\.(\d+)$/;

/** The version after `current` for a bump word or an explicit X.Y.Z (which must be higher). */
export function nextVersion(current, bump) {
  const m = SEMVER.exec(current);
  if (!m) throw new Error(`current version ${current} is not X.Y.Z`);
  const [major, minor, patch] = m.slice(1).map(Number);
  if (bump === 'major') return `${major + 1}.0.0`;
  if (bump === 'minor') return `${major}.${minor + 1}.0`;
  if (bump === 'patch') return `${major}.${minor}.${patch + 1}`;
  const n = SEMVER.exec(bump ?? '');
  if (!n) throw new Error(`expected major, minor, patch or X.Y.Z, got ${JSON.stringify(bump ?? '')}`);
  const cmp = n.slice(1).map(Number).map((v, i) => v - [major, minor, patch][i]).find((d) => d !== 0) ?? 0;
  if (cmp <= 0) throw new Error(`${bump} is not above the current version ${current}`);
  return bump;
}

/** Sets `version` and every dependency on a sibling package to `version`. Returns new manifests. */
export function bumpManifests(manifests, version) {
  const names = new Set(manifests.map((m) => m.name));
  return manifests.map((m) => {
    const out = { ...m, version };
    for (const field of ['dependencies', 'devDependencies', 'peerDependencies']) {
      if (!m[field]) continue;
      out[field] = Object.fromEntries(
        Object.entries(m[field]).map(([dep, range]) => [dep, names.has(dep) ? version : range]),
      );
    }
    return out;
  });
}

/** True when CHANGELOG.md has a `## [version]` section. */
export function changelogHas(text, version) {
  return new RegExp(`^## \\[${version.replace(/\./g, '\\.')}\\]`, 'm').test(text);
}

function main(argv) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const dryRun = argv.includes('--dry-run');
  const bump = argv.find((a) => !a.startsWith('--'));
  const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, encoding: 'utf8', ...opts });
  const fail = (msg) => { process.stderr.write(`release: ${msg}\n`); process.exit(1); };

  const files = PACKAGES.map((p) => join(root, p, 'package.json'));
  const manifests = files.map((f) => JSON.parse(readFileSync(f, 'utf8')));
  const versions = new Set(manifests.map((m) => m.version));
  if (versions.size !== 1) fail(`the packages disagree on their version (${[...versions].join(', ')}); set them in step first`);
  let version;
  try { version = nextVersion(manifests[0].version, bump); } catch (e) { fail(e.message); }

  const dirty = run('git', ['status', '--porcelain']).trim();
  if (dirty && !dryRun) fail(`the working tree is not clean; commit or stash first:\n${dirty}`);
  if (dirty) process.stdout.write('note: the working tree is not clean (allowed with --dry-run)\n');
  if (!changelogHas(readFileSync(join(root, 'CHANGELOG.md'), 'utf8'), version)) {
    const msg = `CHANGELOG.md has no "## [${version}]" section: move the Unreleased entries under it first`;
    if (!dryRun) fail(msg);
    process.stdout.write(`note: ${msg}\n`);
  }
  process.stdout.write('typecheck…\n');
  run('npm', ['run', '--silent', 'typecheck'], { stdio: 'inherit' });

  process.stdout.write(`${manifests[0].version} → ${version}: ${manifests.map((m) => m.name).join(', ')}\n`);
  if (dryRun) {
    process.stdout.write('--dry-run: no file changed, nothing packed\n');
    return;
  }
  bumpManifests(manifests, version).forEach((m, i) => writeFileSync(files[i], `${JSON.stringify(m, null, 2)}\n`));
  run('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], { stdio: 'inherit' });
  // A clean build: a dist/ file whose source is gone must not ship.
  for (const p of PACKAGES) rmSync(join(root, p, 'dist'), { recursive: true, force: true });
  rmSync(join(root, 'packages/client/miniprogram_dist'), { recursive: true, force: true });
  run('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
  const out = join(root, 'dist-release');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  for (const p of PACKAGES) run('npm', ['pack', '--silent', '--pack-destination', out], { cwd: join(root, p) });
  const tarballs = manifests.map((m) => `dist-release/${m.name}-${version}.tgz`);
  process.stdout.write(`\npacked into dist-release/. To publish (dependencies first):\n\n`);
  process.stdout.write(`  git commit -am "Release ${version}" && git tag v${version}\n`);
  for (const t of tarballs) process.stdout.write(`  npm publish ${t}\n`);
  process.stdout.write(`  git push && git push --tags\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));
