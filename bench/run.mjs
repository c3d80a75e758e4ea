// Runs every bench (each its own process, --json) and prints one summary table of the ratios.
//
//   npm run bench                  node bench/run.mjs            (after a build)
//   npm run test:bench-smoke       node bench/run.mjs --smoke
//   node bench/run.mjs --only proxy,stack [--json]
//
// --smoke runs each once briefly with small sizes (figures mean nothing) so that none can rot:
// it fails if a bench crashes or leaves a process behind. It first checks the process registry
// itself with a stand-in bench (bench/processes-check.mjs) ended every way a bench can end. Every bench runs with TMPDIR set to a
// directory of its own, and starts its processes there (bench/processes.mjs), so a process whose
// working directory is in it afterwards is a leftover of that bench — nginx workers, wrk and
// openssl included, which have no path of the bench in their command line.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { benchArgs, describeTarget, printTable } from './table.mjs';

const args = benchArgs({ only: { type: 'string' } });
const SMOKE = args.smoke;
const BENCHES = [
  { name: 'login', args: [] },
  { name: 'budget', args: [] },
  { name: 'proxy', args: ['--workers', '2'] },
  { name: 'handshake', args: [] },
  { name: 'upload', args: [] },
  { name: 'stack', args: [] },
  { name: 'channel', args: ['--tls'] },
  { name: 'channel-memory', args: [] },
  { name: 'keepalive-memory', args: [] },
  { name: 'tunnel', args: [] },
  // Before/after of two trees: in a smoke run this tree against itself, so that it cannot rot.
  ...(SMOKE ? [{ name: 'cost', args: ['--before', '.'] }] : []),
].filter((b) => !args.only || args.only.split(',').includes(b.name));
const root = mkdtempSync(path.join(tmpdir(), 'minigate-bench-run-'));
// Run as root, nginx's workers are `nobody`, and the upload bench's must reach their body files here.
chmodSync(root, 0o711);
let current;

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    // The bench stops its own processes on this signal; wait for it, then go.
    const leave = () => {
      rmSync(root, { recursive: true, force: true });
      process.exit(130);
    };
    if (current) current.once('exit', leave).kill(signal);
    else leave();
  });
}

/** Processes whose working directory is in `dir` (or under it). */
function processesIn(dir) {
  const found = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, '');
      if (cwd === dir || cwd.startsWith(`${dir}/`)) found.push({ pid: Number(pid), cmd: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/**
 * Processes still in `dir` after up to `ms`: a group KILLed as a bench exits is gone a moment
 * later, not at once (the kernel delivers the signal when each process next runs).
 */
async function leftoversIn(dir, ms = 3000) {
  for (const end = Date.now() + ms; ; ) {
    const found = processesIn(dir);
    if (found.length === 0 || Date.now() >= end) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Kills processes left in a run's directory (ours: started under it), by pid. */
function killLeftovers(leftovers) {
  for (const p of leftovers) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * The process registry's own check (bench/processes-check.mjs): nothing is left however a bench
 * ends — normally, by an uncaught exception, by SIGINT — and a process started past the registry
 * is found (so this check can fail).
 */
async function checkRegistry() {
  const failures = [];
  for (const mode of ['normal', 'exception', 'signal', 'leak']) {
    const dir = path.join(root, `check-${mode}`);
    mkdirSync(dir, { mode: 0o711 });
    const child = spawn(process.execPath, [new URL('./processes-check.mjs', import.meta.url).pathname, mode], { env: { ...process.env, TMPDIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (mode === 'signal' && out.includes('ready')) child.kill('SIGINT');
    });
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise((resolve) => child.once('exit', (c, s) => resolve(c ?? s)));
    if (!out.includes('ready')) failures.push(`processes-check ${mode}: never ready (exit ${code})\n${out}`);
    const leftovers = await leftoversIn(dir, mode === 'leak' ? 0 : 3000);
    killLeftovers(leftovers);
    if (mode === 'leak' && leftovers.length === 0) failures.push('processes-check leak: the process it left was not found: the leftover check is blind');
    if (mode !== 'leak') for (const p of leftovers) failures.push(`processes-check ${mode}: left process ${p.pid} running: ${p.cmd}`);
  }
  return failures;
}

function runBench(bench) {
  const dir = path.join(root, bench.name);
  mkdirSync(dir, { mode: 0o711 });
  const argv = [new URL(`./${bench.name}.mjs`, import.meta.url).pathname, '--json', ...(SMOKE ? ['--smoke'] : []), ...bench.args];
  return new Promise((resolve) => {
    const started = Date.now();
    // stderr passes through: progress and errors show as they happen.
    current = spawn(process.execPath, argv, { env: { ...process.env, TMPDIR: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    current.stdout.on('data', (d) => (out += d));
    current.once('exit', async (code, signal) => {
      current = undefined;
      const seconds = (Date.now() - started) / 1000;
      let result;
      try {
        result = JSON.parse(out.trim().split('\n').pop());
      } catch {
        result = undefined;
      }
      const leftovers = await leftoversIn(dir);
      // End them, so that the next bench starts clean.
      killLeftovers(leftovers);
      resolve({ bench: bench.name, code, signal, seconds, result, leftovers });
    });
  });
}

async function main() {
  const checkFailures = SMOKE ? await checkRegistry() : [];
  if (SMOKE && !args.json) console.error(`== process registry check (normal end, exception, SIGINT, a leak): ${checkFailures.length ? 'FAILED' : 'ok'}`);
  const runs = [];
  for (const bench of BENCHES) {
    if (!args.json) console.error(`== ${bench.name}${SMOKE ? ' (smoke)' : ''}`);
    const run = await runBench(bench);
    runs.push(run);
    if (!args.json && run.result) console.error(`   ${run.seconds.toFixed(0)} s, ${run.result.rows.length} rows`);
  }
  const failures = [...checkFailures, ...runs.flatMap((r) => [
    ...(r.code !== 0 || !r.result ? [`${r.bench}: exited ${r.code ?? r.signal}${r.result ? '' : ', no result'}`] : []),
    ...r.leftovers.map((p) => `${r.bench}: left process ${p.pid} running: ${p.cmd}`),
  ])];

  if (args.json) {
    console.log(JSON.stringify({ smoke: SMOKE, results: runs.map((r) => r.result).filter(Boolean), failures }));
  } else {
    const lines = [];
    for (const r of runs) {
      for (const row of r.result?.rows ?? []) {
        lines.push([r.bench, row.name, row.peer ?? '', row.unit, row.ratio === null ? '' : row.ratio.toFixed(2), describeTarget(row.target), row.met === undefined ? '' : row.met ? 'yes' : 'NO']);
      }
    }
    const m = runs.find((r) => r.result)?.result.machine;
    const title = `summary${SMOKE ? ' (SMOKE RUN: figures mean nothing)' : ''}: ratio = value / peer in the same run, every bench with rate limits raised${m ? `\nmachine: ${m.cpus} × ${m.cpuModel}, ${m.memoryMiB} MiB, ${m.os}, node ${m.node}, idle CPUs ${m.idle}` : ''}`;
    printTable(title, ['bench', 'row', 'peer', 'unit', 'ratio', 'target', 'met'], lines, 4);
    for (const f of failures) console.log(`FAILED ${f}`);
  }
  rmSync(root, { recursive: true, force: true });
  if (failures.length) process.exitCode = 1;
}

main();
