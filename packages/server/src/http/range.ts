/** The `Range` header of a download (static files and stored uploads). */

/**
 * One `bytes=` range → [start, end]; null to ignore the header (several ranges, or not bytes:
 * answering the whole file is allowed); 'unsatisfiable' for a range outside the file.
 */
export function parseRange(header: string, size: number): [number, number] | null | 'unsatisfiable' {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return null;
  const [, from, to] = match;
  if (from === '' && to === '') return null;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0) return 'unsatisfiable';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (start >= size || start > end) return 'unsatisfiable';
  return [start, end];
}
