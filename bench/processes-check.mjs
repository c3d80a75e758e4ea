// A stand-in bench for the smoke run's check of bench/processes.mjs: it starts what the benches
// start — nginx with two workers, a node process that forks a child of its own, a load
// generator still running (sleep) — prints "ready", and then ends the way argv says:
//
//   node bench/processes-check.mjs normal      stopAll() in finally, as every bench does
//   node bench/processes-check.mjs exception   an uncaught exception (no finally runs)
//   node bench/processes-check.mjs signal      waits; the runner sends SIGINT
//   node bench/processes-check.mjs leak        also starts a process past the registry and exits:
//                                              the runner must find that one (the check can fail)
//
// bench/run.mjs --smoke runs it each way and fails if any of those processes is left.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createProcesses, freePort, runTracked, startNginx, stopAll, workDir } from './processes.mjs';

const mode = process.argv[2];
const work = workDir('minigate-bench-check-');

async function main() {
  const port = await freePort();
  await startNginx(work, `worker_processes 2;\ndaemon off;\nmaster_process on;\npid ${work}/nginx.pid;\nerror_log ${work}/nginx-error.log warn;\nevents {}\nhttp { access_log off; client_body_temp_path ${work}/body; proxy_temp_path ${work}/proxy; server { listen 127.0.0.1:${port}; return 204; } }\n`, port);
  const parent = path.join(work, 'parent.mjs');
  writeFileSync(parent, `import { spawn } from 'node:child_process';\nspawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });\nconsole.log('parent ready');\nsetInterval(() => {}, 1000);\n`);
  await createProcesses().start([parent], /parent ready/);
  runTracked('sleep', ['60']).catch(() => {}); // stopped, not finished: its rejection is expected
  if (mode === 'leak') spawn('sleep', ['30'], { cwd: tmpdir(), detached: true, stdio: 'ignore' }).unref();
  console.log('ready');
  if (mode === 'exception') {
    setImmediate(() => {
      throw new Error('an exception nobody catches (expected by the check)');
    });
  }
  if (mode === 'signal') await new Promise(() => {}); // until SIGINT
}

main().finally(async () => {
  if (mode === 'normal' || mode === 'leak') await stopAll();
});
