// What the benchmarks share: starting the processes under test and stopping every one of them
// however the benchmark ends, and small client helpers.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';

/**
 * The benchmarks measure throughput, not minigate's rate limits (docs/limits.md): one client
 * address making thousands of logins or upgrades a second would be refused at once. Every config
 * they write raises each limit far above what one machine can send — so the limiter's own cost (a
 * count per login, per upgrade) is in the figures but nothing is refused — and every header line
 * says so.
 */
const RAISED = '100000000/s';
export const LIMITS_RAISED_YAML = `limits:\n${['login', 'loginFailures', 'appLoginFailures', 'phone', 'channelUpgrades', 'internalAuthFailures'].map((k) => `  ${k}: ${RAISED}\n`).join('')}`;
export const LIMITS_RAISED_NOTE = `rate limits raised to ${RAISED}`;

/**
 * Every process a benchmark starts goes through this registry, so that it is stopped however the
 * benchmark ends (normal end, exception, SIGINT/SIGTERM). Each child is spawned detached: the
 * leader of its own process group, so that stopping it reaches what it forked too (nginx's
 * workers, minigate's cluster workers), and a Ctrl-C in the terminal does not race the orderly
 * stop below. Children run in the temporary directory (TMPDIR), which the smoke runner gives each
 * bench and where it looks for leftovers.
 */
const groups = new Map(); // pgid → { name, child, stop?: () => void }
const workDirs = new Set();
let handlersInstalled = false;

/** A bench's temporary directory (under TMPDIR), removed as the process exits however it ends. */
export function workDir(prefix) {
  installHandlers();
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  workDirs.add(dir);
  return dir;
}

function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the benchmark's processes`);
      stopAll().finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1)));
    });
  }
  // Last resort (an uncaught exception, process.exit): no time to wait, so KILL every group.
  process.on('exit', () => {
    for (const pgid of groups.keys()) signalGroup(pgid, 'SIGKILL');
    for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
  });
}

function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: nothing left in the group
  }
}

const groupAlive = (pgid) => signalGroup(pgid, 0);

async function waitGroupGone(pgid, ms) {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (!groupAlive(pgid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !groupAlive(pgid);
}

/**
 * On two CPUs or more, a benchmark gives the server under test CPU 0 and the load (wrk, and the
 * upstream or sandbox the server calls) CPU 1, with taskset: the server's work and the load's then
 * never share a core, and on this kind of 2-core virtual machine a row moved by a half from run to
 * run without it (a third of that with it). The peer of a row gets the same CPU as minigate.
 */
export const PINNED = availableParallelism() >= 2 && hasTaskset();
export const PINNED_NOTE = PINNED ? 'server under test on CPU 0, load on CPU 1 (taskset)' : 'processes not pinned to CPUs (one CPU, or no taskset)';

function hasTaskset() {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `command args…` run on CPU `cpu` when pinning (PINNED) and a CPU is given; as it is otherwise. */
function onCpu(cpu, command, args) {
  return PINNED && cpu !== undefined ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];
}

/**
 * Spawns `command args…` as a registered process group. `stop` (optional) is how to ask it to end
 * (default: TERM to the group); whatever is left after `graceMs` is KILLed.
 */
export function spawnTracked(command, args, { cwd, env, stdio = 'ignore', stop, name = command, cpu } = {}) {
  installHandlers();
  // taskset execs the command: the pid (and process group) is the command's own.
  [command, args] = onCpu(cpu, command, args);
  // cwd: the temporary directory, where the smoke runner looks for leftovers (by /proc/<pid>/cwd).
  const child = spawn(command, args, { cwd: cwd ?? tmpdir(), env: env ?? process.env, stdio, detached: true });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  groups.set(child.pid, { name, child, stop });
  return child;
}

/** Stops one registered group: its own stop (or TERM), then KILL after graceMs; resolves once nothing in it runs. */
export async function stopTracked(child, graceMs = 3000) {
  const pgid = child.pid;
  const entry = groups.get(pgid);
  if (!entry) return;
  if (groupAlive(pgid)) {
    if (entry.stop) entry.stop();
    else signalGroup(pgid, 'SIGTERM');
    if (!(await waitGroupGone(pgid, graceMs))) {
      signalGroup(pgid, 'SIGKILL');
      await waitGroupGone(pgid, 1000);
    }
  }
  groups.delete(pgid);
  if (groupAlive(pgid)) throw new Error(`${entry.name} (process group ${pgid}) is still running after SIGKILL`);
}

/** Stops every registered group (in parallel) and checks none is left; throws if one is. */
export async function stopAll() {
  const left = [];
  await Promise.all(
    [...groups.values()].map((e) => stopTracked(e.child).catch((error) => left.push(error.message))),
  );
  if (left.length) throw new Error(`processes left running:\n${left.join('\n')}`);
}

/**
 * Runs a bench's `main`: an error is printed and fails the run; then every process it started is
 * stopped (one left running fails the run too), and `afterStop` (a database to drop…) runs. The
 * work directory goes at exit (workDir). `beforeStop` runs first (sockets to close).
 */
export function runBench(main, { beforeStop, afterStop } = {}) {
  return main()
    .catch((error) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(async () => {
      await beforeStop?.();
      try {
        await stopAll();
      } catch (error) {
        console.error(error.message);
        process.exitCode = 1;
      }
      await afterStop?.();
    });
}

/** Runs `command args…` to its end (tracked, so an interrupted benchmark stops it too); resolves with its stdout. */
export function runTracked(command, args, { cwd, env, timeoutMs, cpu } = {}) {
  const child = spawnTracked(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], cpu });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const timer = timeoutMs ? setTimeout(() => signalGroup(child.pid, 'SIGKILL'), timeoutMs) : undefined;
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      groups.delete(child.pid);
      if (code === 0) resolve({ stdout: out, stderr: err });
      else reject(new Error(`${command} ${args.join(' ')} exited ${code ?? signal}\n${err}${out}`));
    });
  });
}

/**
 * Starts a tracked process and resolves once `readyPattern` (a RegExp, or a function of the
 * output returning a truthy value) matches its stdout; rejects if it exits first. Logs (stderr)
 * go to `logFile` when given: like production, a file rather than a pipe the benchmark must drain.
 */
export function startTracked(command, args, readyPattern, { logFile, env, cwd, cpu } = {}) {
  const stdio = ['ignore', 'pipe', logFile ? openSync(logFile, 'w') : 'pipe'];
  const child = spawnTracked(command, args, { cwd, env, stdio, cpu });
  let text = '';
  let ready = false;
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      if (!ready) reject(new Error(`${command} ${args.join(' ')} exited ${code}\n${text}${logFile ? readFileSync(logFile, 'utf8') : ''}`));
    });
    child.stdout.on('data', (d) => {
      text += d;
      const m = typeof readyPattern === 'function' ? readyPattern(text) : readyPattern.exec(text);
      if (m && !ready) {
        ready = true;
        resolve({ child, match: m });
      }
    });
    child.stderr?.on('data', (d) => (text += d));
  });
}

/** Node processes for a benchmark (minigate, peers, the sandbox), MINIGATE_STORE unset so the config decides. */
export function createProcesses() {
  return {
    /** `cpu`: the CPU to run on when pinning (PINNED); 0 for the server under test, 1 for the load. */
    start(args, readyPattern, logFile, env, cpu) {
      return startTracked(process.execPath, args, readyPattern, { logFile, cpu, env: { ...process.env, MINIGATE_STORE: undefined, ...env } });
    },
    stop: stopTracked,
    stopAll,
  };
}

/**
 * nginx in the foreground (the config says `daemon off`, `master_process on`, its workers, and its
 * pid file, logs and temp paths in `work`). Stopped with `nginx -s quit` (graceful: the workers finish and exit, then
 * the master); the registry KILLs the whole group if that takes too long. Resolves once `port` accepts.
 */
export async function startNginx(work, confText, port, name = 'nginx', cpu = undefined) {
  const conf = path.join(work, `${name}.conf`);
  writeFileSync(conf, confText);
  const child = spawnTracked('nginx', ['-c', conf, '-p', work], {
    cwd: work,
    stdio: ['ignore', 'ignore', openSync(path.join(work, `${name}-stderr.log`), 'w')],
    name,
    cpu,
    stop: () => {
      try {
        execFileSync('nginx', ['-c', conf, '-p', work, '-s', 'quit'], { stdio: 'ignore' });
      } catch {
        signalGroup(child.pid, 'SIGTERM');
      }
    },
  });
  let exitCode;
  child.once('exit', (code) => (exitCode = code));
  for (const end = Date.now() + 10_000; Date.now() < end; ) {
    if (exitCode !== undefined) throw new Error(`nginx exited ${exitCode}: ${readFileSync(path.join(work, `${name}-stderr.log`), 'utf8')}`);
    if (await accepts(port)) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on ${port} within 10 s`);
}

/** True when something accepts TCP connections on 127.0.0.1:port now. */
export function accepts(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

export function nginxVersion() {
  try {
    // nginx -v prints to stderr.
    return execFileSync('sh', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('nginx is not installed: apt-get install -y nginx-light (.ci/run does it)');
  }
}

export async function post(url, body) {
  const r = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Runs fn(0…n-1) with at most `limit` in flight. */
export async function pool(n, limit, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A self-signed certificate for localhost and 127.0.0.1 in `dir` (the bench clients do not verify it). */
export function selfSignedCertificate(dir) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '30', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { cwd: dir, stdio: 'pipe' });
  return { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
}

/** /proc/<pid>/stat fields after the command name: [state, ppid, …]; utime and stime are 11 and 12. */
function statFields(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(') ') + 2).split(' ');
  } catch {
    return null; // gone meanwhile
  }
}

/**
 * CPU time (user + system, seconds) used so far by these processes and every process below them
 * (nginx's workers under its master, minigate's under its primary). The kernel counts in ticks
 * of 10 ms (USER_HZ 100), so read it over seconds of load, not per request.
 */
export function cpuSeconds(...pids) {
  const parent = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields) parent.set(Number(entry), { ppid: Number(fields[1]), seconds: (Number(fields[11]) + Number(fields[12])) / 100 });
  }
  const roots = new Set(pids);
  let total = 0;
  for (const [pid, { seconds }] of parent) {
    for (let p = pid; p > 1; p = parent.get(p)?.ppid ?? 0) {
      if (roots.has(p)) {
        total += seconds;
        break;
      }
    }
  }
  return total;
}

/** Process ids whose command name (/proc/<pid>/comm) is `name`, e.g. mariadbd. */
export function pidsNamed(name) {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name;
      } catch {
        return false;
      }
    })
    .map(Number);
}
