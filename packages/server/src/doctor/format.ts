/** The human form of a check report: a compact table per URL, 100 columns, colour on a TTY. */
import type { CheckReport, Verdict } from './types.js';

export const WIDTH = 100;
const LABEL = 24; // "  ✗ " + title padded

const MARK: Record<Verdict, string> = { pass: '✓', warn: '!', fail: '✗', info: 'i', skip: '-' };
const COLOUR: Record<Verdict, string> = { pass: '32', warn: '33', fail: '31', info: '36', skip: '90' };

/** Terminal cells of a string (CJK characters take two). */
function cells(text: string): number {
  let n = 0;
  for (const ch of text) n += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(ch) ? 2 : 1;
  return n;
}

/** Wraps by terminal cells, so Chinese lines fit too. */
function wrapCells(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    const candidate = line ? `${line} ${word}` : word;
    if (cells(candidate) <= width) {
      line = candidate;
      continue;
    }
    if (line) lines.push(line);
    line = word;
    while (cells(line) > width) {
      let head = '';
      for (const ch of line) {
        if (cells(head + ch) > width) break;
        head += ch;
      }
      lines.push(head);
      line = line.slice(head.length);
    }
  }
  if (line) lines.push(line);
  return lines;
}

export function formatReport(report: CheckReport, colour: boolean): string {
  const paint = (verdict: Verdict, text: string) => (colour ? `\x1b[${COLOUR[verdict]}m${text}\x1b[0m` : text);
  const out: string[] = [];
  for (const r of report.results) {
    const head = `${r.url}  (${r.type})`;
    const status = r.verdict.toUpperCase();
    out.push(`${head}${' '.repeat(Math.max(1, WIDTH - cells(head) - status.length))}${paint(r.verdict, status)}`);
    for (const c of r.checks) {
      const label = `  ${MARK[c.verdict]} ${c.title}`.padEnd(LABEL);
      const body = wrapCells(c.detail, WIDTH - LABEL);
      const fix = c.fix ? wrapCells(`fix: ${c.fix}`, WIDTH - LABEL) : [];
      out.push(`${colour ? label.replace(MARK[c.verdict], paint(c.verdict, MARK[c.verdict])) : label}${body[0] ?? ''}`);
      for (const line of [...body.slice(1), ...fix]) out.push(`${' '.repeat(LABEL)}${line}`);
    }
    out.push('');
  }
  const counts = report.results.reduce((n, r) => ({ ...n, [r.verdict]: (n[r.verdict] ?? 0) + 1 }), {} as Record<string, number>);
  out.push(Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ') + (report.exitCode === 2 ? ' (a server could not be reached)' : ''));
  return `${out.join('\n')}\n`;
}
