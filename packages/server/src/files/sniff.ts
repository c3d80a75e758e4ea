/**
 * A file's type from its first bytes (magic numbers), never from the client's Content-Type or
 * name: a PHP script renamed photo.jpg is not a JPEG. Only types that can be told this way are
 * offered; SVG and HTML (script in a "picture") have no magic and cannot be allowed.
 */

import { KNOWN_TYPES, type FileType } from '../config/index.js';

export { KNOWN_TYPES, type FileType };

/** Bytes needed to tell every type below. */
export const SNIFF_BYTES = 32;

const ascii = (text: string) => Buffer.from(text, 'latin1');
const at = (bytes: Buffer, offset: number, magic: Buffer | number[]) => {
  const m = Buffer.isBuffer(magic) ? magic : Buffer.from(magic);
  return bytes.length >= offset + m.length && bytes.subarray(offset, offset + m.length).equals(m);
};

/** ISO base media (MP4, MOV, HEIC, M4A): the brand in the `ftyp` box. */
function isoBrand(bytes: Buffer): string | null {
  return at(bytes, 4, ascii('ftyp')) && bytes.length >= 12 ? bytes.subarray(8, 12).toString('latin1') : null;
}

const known = (mime: string): FileType => {
  const type = KNOWN_TYPES.get(mime);
  if (!type) throw new Error(`${mime} is not in KNOWN_TYPES`);
  return type;
};

// Order matters: the specific ISO brands before the catch-all MP4.
const TYPES: { type: FileType; test: (b: Buffer) => boolean }[] = [
  { type: known('image/jpeg'), test: (b) => at(b, 0, [0xff, 0xd8, 0xff]) },
  { type: known('image/png'), test: (b) => at(b, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  { type: known('image/gif'), test: (b) => at(b, 0, ascii('GIF87a')) || at(b, 0, ascii('GIF89a')) },
  { type: known('image/webp'), test: (b) => at(b, 0, ascii('RIFF')) && at(b, 8, ascii('WEBP')) },
  { type: known('image/bmp'), test: (b) => at(b, 0, ascii('BM')) && b.length >= 26 && b.readUInt32LE(14) >= 12 },
  {
    type: known('image/heic'),
    test: (b) => ['heic', 'heix', 'heim', 'heis', 'mif1', 'msf1'].includes(isoBrand(b) ?? ''),
  },
  { type: known('video/quicktime'), test: (b) => isoBrand(b) === 'qt  ' },
  { type: known('audio/mp4'), test: (b) => isoBrand(b) === 'M4A ' },
  {
    // Any other ISO brand (isom, mp41, mp42, avc1, iso2…, 3gp4…) is an MP4-family video.
    type: known('video/mp4'),
    test: (b) => {
      const brand = isoBrand(b);
      return brand !== null && /^[\x20-\x7e]{4}$/.test(brand);
    },
  },
  { type: known('audio/mpeg'), test: (b) => at(b, 0, ascii('ID3')) || (b.length >= 2 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0 && (b[1]! & 0x06) !== 0) },
  { type: known('audio/aac'), test: (b) => b.length >= 2 && b[0] === 0xff && (b[1]! & 0xf6) === 0xf0 },
  { type: known('audio/wav'), test: (b) => at(b, 0, ascii('RIFF')) && at(b, 8, ascii('WAVE')) },
  // WeChat's voice recordings (silk v3), with or without the leading 0x02 byte.
  { type: known('audio/silk'), test: (b) => at(b, 0, ascii('#!SILK_V3')) || at(b, 1, ascii('#!SILK_V3')) },
  { type: known('application/pdf'), test: (b) => at(b, 0, ascii('%PDF-')) },
  // Office documents (docx, xlsx, pptx) are zip files; they are stored as zip.
  { type: known('application/zip'), test: (b) => at(b, 0, [0x50, 0x4b, 0x03, 0x04]) },
];

// Every type the schema offers can be told by its bytes (a type added to KNOWN_TYPES needs a test here).
for (const mime of KNOWN_TYPES.keys()) if (!TYPES.some((t) => t.type.mime === mime)) throw new Error(`no sniff test for ${mime}`);

/** The type of content starting with `head` (at least SNIFF_BYTES of it when the file is that long), or null. */
export function sniff(head: Buffer): FileType | null {
  for (const { type, test } of TYPES) if (test(head)) return type;
  return null;
}

/**
 * A client's file name made safe to keep and to show: no directories, no control or
 * path characters, at most 200 characters, and the extension of what the file really is.
 */
export function cleanName(name: string | undefined, type: FileType): string {
  let base = (name ?? '').normalize('NFC').split(/[\\/]/).pop() ?? '';
  base = base.replace(/[\u0000-\u001f\u007f<>:"|?*\u202a-\u202e\u2066-\u2069]/g, '').replace(/^[.\s]+/, '').trim();
  const dot = base.lastIndexOf('.');
  const stem = (dot > 0 ? base.slice(0, dot) : base).slice(0, 180) || 'file';
  const ext = dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
  return `${stem}.${type.ext.includes(ext) ? ext : type.ext[0]}`;
}
