/** Just enough DER reading for the keystores and certificate fields Node does not expose. */

export interface Tlv {
  tag: number;
  /** The value bytes. */
  value: Buffer;
  /** Offset just past this element. */
  end: number;
}

export class DerError extends Error {}

/** DER bytes as a PEM block (`label`: CERTIFICATE, PRIVATE KEY). */
export function toPem(label: string, der: Buffer): string {
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** The element at `offset` of `buffer`. */
export function readTlv(buffer: Buffer, offset = 0): Tlv {
  if (offset + 2 > buffer.length) throw new DerError('truncated DER');
  const tag = buffer[offset]!;
  let length = buffer[offset + 1]!;
  let cursor = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || cursor + bytes > buffer.length) throw new DerError('bad DER length');
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + buffer[cursor + i]!;
    cursor += bytes;
  }
  if (cursor + length > buffer.length) throw new DerError('truncated DER');
  return { tag, value: buffer.subarray(cursor, cursor + length), end: cursor + length };
}

/** The elements inside a constructed value (a SEQUENCE's fields). */
export function children(value: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let offset = 0; offset < value.length; ) {
    const tlv = readTlv(value, offset);
    out.push(tlv);
    offset = tlv.end;
  }
  return out;
}

/** Dotted text of an OBJECT IDENTIFIER value. */
export function oidText(value: Buffer): string {
  if (value.length === 0) throw new DerError('empty OID');
  const parts = [Math.floor(value[0]! / 40), value[0]! % 40];
  let n = 0;
  for (let i = 1; i < value.length; i++) {
    n = n * 128 + (value[i]! & 0x7f);
    if (!(value[i]! & 0x80)) {
      parts.push(n);
      n = 0;
    }
  }
  return parts.join('.');
}

const SIGNATURE_ALGORITHMS: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.2.840.113549.1.1.10': 'rsassaPss',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.3.101.112': 'ed25519',
};

/** The name of the algorithm a certificate (DER) is signed with. */
export function certificateSignatureAlgorithm(der: Buffer): string {
  const certificate = children(readTlv(der).value);
  const algorithm = certificate[1];
  if (!algorithm) throw new DerError('not a certificate');
  const oid = oidText(children(algorithm.value)[0]!.value);
  return SIGNATURE_ALGORITHMS[oid] ?? oid;
}

const HASHES: Record<string, string> = {
  '1.3.14.3.2.26': 'SHA-1',
  '2.16.840.1.101.3.4.2.1': 'SHA-256',
  '2.16.840.1.101.3.4.2.2': 'SHA-384',
  '2.16.840.1.101.3.4.2.3': 'SHA-512',
};

/**
 * The hash a certificate (DER) is signed with: `SHA-1`, `SHA-256`, `SHA-384`, `SHA-512`, `MD5`,
 * or `?` (Ed25519, whose hash is not a choice, or an algorithm not known here). RSASSA-PSS names
 * its hash in its parameters (SHA-1 when absent, RFC 4055).
 */
export function certificateSignatureHash(der: Buffer): string {
  const name = certificateSignatureAlgorithm(der);
  if (name === 'rsassaPss') {
    const algorithm = children(children(readTlv(der).value)[1]!.value);
    const params = algorithm[1] ? children(algorithm[1].value) : [];
    const explicit = params.find((p) => p.tag === 0xa0);
    if (!explicit) return 'SHA-1';
    const oid = oidText(children(readTlv(explicit.value).value)[0]!.value);
    return HASHES[oid] ?? '?';
  }
  const match = /(sha|md)-?(\d+)/i.exec(name);
  if (!match) return '?';
  return match[1]!.toLowerCase() === 'md' ? `MD${match[2]}` : `SHA-${match[2]}`;
}
