// The one result shape every benchmark prints with --json, and its table.
//
//   { bench, machine: { node, cpus, cpuModel, os, memory, loadavg, idle }, notes: [..], params: {..},
//     rows: [{ name, value, unit, peer, peerValue, ratio, p99, peerP99, target?, met? }] }
//
// value and peerValue are in unit (req/s, handshakes/s, MiB/s, MiB, µs…); p99 and peerP99 in ms
// (null where a bench has no latency); ratio = value / peerValue (null without a peer). target:
// { ratio: r } means ratio ≥ r, { maxRatio: r } ratio ≤ r (memory), { max: v } value ≤ v,
// { p99: k } adds p99 ≤ k × peerP99; met is whether the row meets all of them (absent without a
// target).
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { IDLE } from './idle.mjs';

/** Prints a table: text columns left-aligned, numbers right-aligned. */
export function printTable(title, header, lines, textColumns = 1) {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => cells.map((c, i) => (i < textColumns ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n${title}`);
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
}

/**
 * The options every bench takes (--json, --smoke) plus its own. In smoke mode the bench runs
 * briefly with small sizes to prove it still works; its figures mean nothing.
 */
export function benchArgs(options) {
  const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, smoke: { type: 'boolean', default: false }, ...options } });
  // Options whose default is a number take a positive number (a typo would otherwise reach wrk as NaN).
  for (const [name, option] of Object.entries(options)) {
    if (/^\d+(\.\d+)?$/.test(option.default ?? '') && !(Number(values[name]) > 0)) throw new Error(`--${name}: expected a positive number, got ${values[name]}`);
  }
  return values;
}

export function machine() {
  const c = cpus();
  return {
    node: process.version,
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    os: `${process.platform} ${release()}`,
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    freeMemoryMiB: Math.round(freemem() / 2 ** 20),
    loadavg: loadavg().map((x) => Number(x.toFixed(2))),
    idle: IDLE,
  };
}

/** One row; ratio and met are derived here so every bench computes them alike. */
/** The middle value (the upper middle of an even count): what a row shows of several runs. */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function row({ name, value, unit, peer = null, peerValue = null, p99 = null, peerP99 = null, target }) {
  const ratio = peerValue ? value / peerValue : null;
  const out = { name, value, unit, peer, peerValue, ratio, p99, peerP99 };
  if (target) {
    let met = true;
    if (target.ratio !== undefined) met &&= ratio !== null && ratio >= target.ratio;
    if (target.maxRatio !== undefined) met &&= ratio !== null && ratio <= target.maxRatio;
    if (target.max !== undefined) met &&= value <= target.max;
    if (target.p99 !== undefined) met &&= p99 !== null && peerP99 !== null && p99 <= target.p99 * peerP99;
    out.target = target;
    out.met = met;
  }
  return out;
}

export function describeTarget(t) {
  if (!t) return '';
  const parts = [];
  if (t.ratio !== undefined) parts.push(`≥${t.ratio}×`);
  if (t.maxRatio !== undefined) parts.push(`≤${t.maxRatio}×`);
  if (t.max !== undefined) parts.push(`≤${t.max}`);
  if (t.p99 !== undefined) parts.push(`p99 ≤${t.p99}× peer`);
  return parts.join(', ');
}

const num = (x, digits = 0) => (x === null || x === undefined || Number.isNaN(x) ? '' : x.toFixed(digits));

/** Prints a result: the JSON object (--json) or the table with its header line. */
export function report(result, json) {
  if (json) {
    console.log(JSON.stringify(result));
    return;
  }
  const m = result.machine;
  const title = `${result.bench}: ${result.notes.join(', ')}\nmachine: ${m.cpus} × ${m.cpuModel}, ${m.memoryMiB} MiB, ${m.os}, node ${m.node}, load ${m.loadavg.join(' ')}, idle CPUs ${m.idle}`;
  const digits = (v) => (Math.abs(v) < 100 ? 1 : 0);
  printTable(
    title,
    ['row', 'peer', 'unit', 'value', 'peer value', 'ratio', 'p99 ms', 'peer p99', 'target', 'met'],
    result.rows.map((r) => [
      r.name,
      r.peer ?? '',
      r.unit,
      num(r.value, digits(r.value ?? 0)),
      num(r.peerValue, digits(r.peerValue ?? 0)),
      num(r.ratio, 2),
      num(r.p99, 2),
      num(r.peerP99, 2),
      describeTarget(r.target),
      r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    ]),
    3,
  );
}

/** The result object; `notes` are the header's remarks (always including the raised rate limits). */
export function result(bench, notes, params, rows) {
  return { bench, machine: machine(), notes, params, rows };
}
