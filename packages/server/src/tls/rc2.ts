/**
 * RC2-CBC decryption (RFC 2268), for the certificates of legacy PKCS#12 files: `openssl pkcs12
 * -legacy`, old Tomcat and IIS exports encrypt them with pbeWithSHAAnd40BitRC2-CBC, and Node's
 * OpenSSL 3 offers RC2 only with the legacy provider, which a server should not have to load.
 * Decryption only: minigate never writes a PKCS#12 file.
 */

/** RFC 2268 §2: the "random" permutation of 0..255 derived from the digits of pi. */
const PITABLE = Buffer.from(
  'd978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e8254d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb6266fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed708e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ecc2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731' +
    '2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a90d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad',
  'hex',
);

/** The 64 16-bit subkeys of `key` with `effectiveBits` of effective key length (RFC 2268 §2). */
export function rc2KeySchedule(key: Buffer, effectiveBits: number): Uint16Array {
  const t = key.length;
  if (t < 1 || t > 128) throw new RangeError('RC2 key length must be 1..128 bytes');
  const l = Buffer.alloc(128);
  key.copy(l);
  for (let i = t; i < 128; i++) l[i] = PITABLE[(l[i - 1]! + l[i - t]!) & 0xff]!;
  const t8 = Math.ceil(effectiveBits / 8);
  const tm = 0xff >> (8 * t8 - effectiveBits);
  l[128 - t8] = PITABLE[l[128 - t8]! & tm]!;
  for (let i = 127 - t8; i >= 0; i--) l[i] = PITABLE[l[i + 1]! ^ l[i + t8]!]!;
  const k = new Uint16Array(64);
  for (let i = 0; i < 64; i++) k[i] = l[2 * i]! | (l[2 * i + 1]! << 8);
  return k;
}

const SHIFTS = [1, 2, 3, 5];

/** Decrypts one 8-byte block in place (RFC 2268 §4: the rounds of §3 undone, in reverse). */
function decryptBlock(k: Uint16Array, block: Buffer, at: number): void {
  const r = [block.readUInt16LE(at), block.readUInt16LE(at + 2), block.readUInt16LE(at + 4), block.readUInt16LE(at + 6)];
  let j = 63;
  const unmix = () => {
    for (let i = 3; i >= 0; i--) {
      const x = r[i]!;
      const rotated = ((x >>> SHIFTS[i]!) | (x << (16 - SHIFTS[i]!))) & 0xffff;
      const a = r[(i + 3) & 3]!;
      const b = r[(i + 2) & 3]!;
      const c = r[(i + 1) & 3]!;
      r[i] = (rotated - k[j]! - (a & b) - (~a & c)) & 0xffff;
      j--;
    }
  };
  const unmash = () => {
    for (let i = 3; i >= 0; i--) r[i] = (r[i]! - k[r[(i + 3) & 3]! & 63]!) & 0xffff;
  };
  for (let n = 0; n < 5; n++) unmix();
  unmash();
  for (let n = 0; n < 6; n++) unmix();
  unmash();
  for (let n = 0; n < 5; n++) unmix();
  for (let i = 0; i < 4; i++) block.writeUInt16LE(r[i]!, at + 2 * i);
}

/** Decrypts ECB blocks (for the RFC 2268 test vectors). */
export function rc2DecryptBlocks(key: Buffer, effectiveBits: number, data: Buffer): Buffer {
  const k = rc2KeySchedule(key, effectiveBits);
  const out = Buffer.from(data);
  for (let at = 0; at + 8 <= out.length; at += 8) decryptBlock(k, out, at);
  return out;
}

/**
 * RC2-CBC decryption with PKCS#7 padding removed; throws when the padding is wrong (the usual sign
 * of a wrong password).
 */
export function rc2CbcDecrypt(key: Buffer, effectiveBits: number, iv: Buffer, data: Buffer): Buffer {
  if (data.length === 0 || data.length % 8 !== 0 || iv.length !== 8) throw new Error('bad RC2-CBC input');
  const k = rc2KeySchedule(key, effectiveBits);
  const out = Buffer.from(data);
  for (let at = 0; at < out.length; at += 8) {
    decryptBlock(k, out, at);
    const previous = at === 0 ? iv : data.subarray(at - 8, at);
    for (let i = 0; i < 8; i++) out[at + i]! ^= previous[i]!;
  }
  const pad = out[out.length - 1]!;
  if (pad < 1 || pad > 8 || !out.subarray(out.length - pad).every((b) => b === pad)) throw new Error('bad decrypt');
  return out.subarray(0, out.length - pad);
}
