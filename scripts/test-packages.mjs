#!/usr/bin/env node
// npm run test:packages: what a user gets from npm. Packs the four packages, checks what the
// tarballs hold, installs them into an empty directory outside the repository and runs
// `npx minigate dev --port 0 --json` there: a login through the dev server's sandbox, the
// playground page and a channel message must work. Not part of `npm test` (an install takes a
// minute or more); .ci/run calls it after.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { PACKAGES } from './release.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'minigate-packages-'));
const keep = process.argv.includes('--keep');
let child;
const failures = [];
const check = (ok, what) => {
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${what}\n`);
  if (!ok) failures.push(what);
};
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

/** Files that have no place in a user's node_modules. */
export const UNWANTED = [/\.tsbuildinfo$/, /(^|\/)test\//, /\.test\.(ts|js|d\.ts)(\.map)?$/, /(^|\/)node_modules\//];

async function main() {
  // 1. Pack, and look inside.
  for (const p of PACKAGES) {
    const [info] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], join(root, p)));
    const paths = info.files.map((f) => f.path);
    const bad = paths.filter((f) => UNWANTED.some((re) => re.test(f)));
    check(bad.length === 0, `${info.name}: no tests or build leftovers in the tarball${bad.length ? ` (found ${bad.slice(0, 5).join(', ')})` : ''}`);
    check(paths.includes('LICENSE') && paths.includes('README.md'), `${info.name}: LICENSE and README.md in the tarball`);
    process.stdout.write(`     ${info.filename}: ${info.entryCount} files, ${(info.size / 1024).toFixed(0)} KiB\n`);
  }

  // 2. Install into an empty directory, as a user would.
  const tarballs = readdirSync(work).filter((f) => f.endsWith('.tgz')).map((f) => `./${f}`);
  run('npm', ['init', '-y'], work);
  const started = Date.now();
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs], work);
  process.stdout.write(`     npm install took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

  // 3. minigate dev there.
  // Its own process group: npx does not pass SIGTERM on to minigate, so the group is signalled.
  child = spawn('npx', ['minigate', 'dev', '--port', '0', '--json'], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const facts = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`minigate dev printed nothing in 60 s\n${stderr}`)), 60_000);
    child.on('exit', (code) => reject(new Error(`minigate dev exited (${code})\n${stderr}`)));
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line));
    });
  });
  check(typeof facts.url === 'string' && typeof facts.appid === 'string', `minigate dev --json prints its facts (${facts.url})`);

  // Login the way the README tour does: a code from the dev server's own /__sandbox.
  const post = async (path, body) => {
    const res = await fetch(`${facts.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  };
  const code = await post('/__sandbox/login', { appid: facts.appid });
  check(code.status === 200 && typeof code.body.code === 'string', 'the sandbox gives a wx.login code');
  const login = await post('/auth/login', { code: code.body.code });
  check(login.status === 200 && typeof login.body.token === 'string', 'POST /auth/login answers a session token');
  const session = await fetch(`${facts.url}/auth/session`, { headers: { authorization: `Bearer ${login.body.token}` } });
  check(session.status === 200, 'GET /auth/session with the token: 200');

  const page = await fetch(facts.playground);
  const html = await page.text();
  check(page.status === 200 && /<html/i.test(html), 'the playground page is served');
  const sdk = await fetch(`${facts.url}/playground/sdk/minigate-client.mjs`);
  check(sdk.status === 200, 'the playground loads minigate-client from the installed package');
  const rootPage = await fetch(`${facts.url}/`);
  check(rootPage.status === 200 && (await rootPage.text()).includes('/playground/'), '/ leads to the playground');

  // A channel message: join a room, publish, get it back.
  const ws = new WebSocket(`${facts.url.replace(/^http/, 'ws')}/channel`, { headers: { authorization: `Bearer ${login.body.token}` } });
  const got = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no channel message in 10 s')), 10_000);
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'join', room: 'chat:lobby' })));
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (frame.type === 'joined') ws.send(JSON.stringify({ type: 'publish', room: 'chat:lobby', event: 'say', data: 'hello from the tarballs' }));
      if (frame.type === 'message') {
        clearTimeout(timer);
        resolve(frame);
      }
    });
  });
  ws.close();
  check(got.data === 'hello from the tarballs', 'a channel message comes back through the room');
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

try {
  await main();
} catch (error) {
  check(false, error.message);
} finally {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(-child.pid, 'SIGTERM');
    await exited;
    // minigate itself (npx's child) drains before it exits; wait for the group to be empty.
    for (let i = 0; i < 100 && groupAlive(child.pid); i++) await new Promise((r) => setTimeout(r, 100));
    check(!groupAlive(child.pid), 'minigate dev stops on SIGTERM');
  }
  if (keep) process.stdout.write(`kept ${work}\n`);
  else rmSync(work, { recursive: true, force: true });
}
process.stdout.write(failures.length ? `\n${failures.length} failed\n` : '\ntest:packages: all passed\n');
process.exit(failures.length ? 1 : 0);
