/**
 * Counts the header lines of each part of a multipart body as it streams past. busboy (1.6)
 * accepts a `headerPairs` limit but never applies it: a part with hundreds of header lines
 * would pass unseen (files.maxHeaderPairs). Only the part headers are read byte by byte; the
 * data between them is searched for the next delimiter with Buffer.indexOf, so a big file costs
 * next to nothing.
 */

/** busboy's own cap on one part's header block; past it busboy refuses the body itself. */
const MAX_HEADER_BYTES = 16 * 1024;
const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;

/** The boundary a multipart Content-Type names (quoted or not), or undefined. */
export function boundaryOf(contentType: string): string | undefined {
  const match = /;\s*boundary=(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(contentType);
  if (!match) return undefined;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2];
}

/**
 * A function to give each chunk of the body, in order. It returns false while every part has
 * at most `maxPairs` header lines, and true from the chunk where one has more.
 */
export function partHeaderCounter(boundary: string, maxPairs: number): (chunk: Buffer) => boolean {
  // Every delimiter but the first follows a CRLF; the body is treated as if it began with one.
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  let tail: Buffer = Buffer.from('\r\n');
  let state: 'data' | 'delimiter-line' | 'headers' | 'done' = 'data';
  let pairs = 0;
  let headerBytes = 0;
  let lineBytes = 0;
  let folded = false;
  let justMatched = false;
  let over = false;

  /** Where the next delimiter ends in `chunk` from `pos`, or -1 (keeping the end for a delimiter split across chunks). */
  function findDelimiter(chunk: Buffer, pos: number): number {
    if (tail.length) {
      const joined = Buffer.concat([tail, chunk.subarray(pos, pos + delimiter.length - 1)]);
      const at = joined.indexOf(delimiter);
      // Only a delimiter that starts in the kept tail: one wholly in this chunk is found below.
      if (at !== -1 && at < tail.length) {
        const end = pos + at + delimiter.length - tail.length;
        tail = Buffer.alloc(0);
        return end;
      }
    }
    const at = chunk.indexOf(delimiter, pos);
    if (at !== -1) {
      tail = Buffer.alloc(0);
      return at + delimiter.length;
    }
    const keep = delimiter.length - 1;
    const rest = chunk.subarray(pos);
    tail = Buffer.from(rest.length >= keep ? rest.subarray(rest.length - keep) : Buffer.concat([tail, rest]).subarray(-keep));
    return -1;
  }

  return (chunk) => {
    let pos = 0;
    while (!over && state !== 'done' && pos < chunk.length) {
      if (state === 'data') {
        const end = findDelimiter(chunk, pos);
        if (end === -1) break;
        pos = end;
        state = 'delimiter-line';
        justMatched = true;
      } else if (state === 'delimiter-line') {
        // `--` right after the delimiter closes the body; anything else runs to the end of its line.
        if (justMatched && chunk[pos] === DASH) {
          state = 'done';
          break;
        }
        justMatched = false;
        const lf = chunk.indexOf(LF, pos);
        if (lf === -1) break;
        pos = lf + 1;
        state = 'headers';
        pairs = 0;
        headerBytes = 0;
        lineBytes = 0;
      } else {
        const byte = chunk[pos++]!;
        if (++headerBytes > MAX_HEADER_BYTES) state = 'done';
        else if (byte === LF) {
          if (lineBytes === 0) state = 'data'; // the empty line: the part's data follows
          else if (!folded && ++pairs > maxPairs) over = true;
          lineBytes = 0;
        } else if (byte !== CR) {
          // A line that starts with a space or tab continues the header above it.
          if (lineBytes === 0) folded = byte === 0x20 || byte === 0x09;
          lineBytes++;
        }
      }
    }
    return over;
  };
}
