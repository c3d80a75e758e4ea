// Runs wrk (the C load generator from Debian's `wrk` package) and parses what it prints.
import { execFile } from 'node:child_process';
import { runTracked } from './processes.mjs';
import { writeFileSync } from 'node:fs';

export function requireWrk() {
  return new Promise((resolve, reject) =>
    execFile('wrk', ['--version'], (error, stdout, stderr) => {
      if (error && error.code === 'ENOENT') reject(new Error('wrk is not installed: apt-get install -y wrk (.ci/run does it)'));
      else resolve(`${stdout}${stderr}`.split('\n')[0].replace(/ Copyright.*/, ''));
    }),
  );
}

/**
 * The script body of a session-check load: GET `path` (undefined: the URL's own path, wrk's nil)
 * with `Authorization: Bearer <token>`, the tokens of `lines` taken in turn (see wrk's `lines`).
 */
export function bearerLua(path) {
  const target = path === undefined ? 'nil' : JSON.stringify(path);
  return `request = function()\n  return wrk.format("GET", ${target}, { ["authorization"] = "Bearer " .. nextItem() })\nend\n`;
}

/**
 * One wrk run. `lua` is a script body; `lines` (optional) is written to a file the script reads
 * one entry per request from (codes, tokens). `cpu`: the CPU wrk runs on when pinning (processes.mjs PINNED).
 */
export async function wrk({ url, duration, connections, threads = 1, lua, lines, work, cpu }) {
  const script = `${work}/bench-${Math.random().toString(36).slice(2)}.lua`;
  let body = lua;
  if (lines) {
    const data = `${script}.txt`;
    writeFileSync(data, `${lines.join('\n')}\n`);
    body = `local items = {}\nfor line in io.lines("${data}") do items[#items + 1] = line end\nlocal n = 0\nlocal function nextItem() n = n + 1; return items[((n - 1) % #items) + 1] end\n${lua}`;
  }
  writeFileSync(script, body);
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${duration}s`, '--latency', '-s', script, url];
  const out = (await runTracked('wrk', args, { timeoutMs: (duration + 30) * 1000, cpu })).stdout;
  const ms = (text) => {
    const m = /([\d.]+)(us|ms|s)\b/.exec(text);
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
  };
  const line = (re) => (re.exec(out) ?? [])[1];
  return {
    rps: Number(line(/Requests\/sec:\s+([\d.]+)/)),
    total: Number(line(/(\d+) requests in/)),
    p50: ms(line(/^\s+50%\s+(\S+)/m) ?? ''),
    p99: ms(line(/^\s+99%\s+(\S+)/m) ?? ''),
    non2xx: Number(line(/Non-2xx or 3xx responses: (\d+)/) ?? 0),
    socketErrors: (line(/Socket errors: (.*)/) ?? '').split(',').reduce((n, part) => n + Number((/(\d+)/.exec(part) ?? [0, 0])[1]), 0),
    raw: out,
  };
}
