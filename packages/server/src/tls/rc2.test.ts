import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { rc2CbcDecrypt, rc2DecryptBlocks } from './rc2.js';

const hex = (s: string) => Buffer.from(s, 'hex');

describe('RC2', () => {
  // RFC 2268 §5: key, effective key bits, plaintext, ciphertext.
  it.each([
    ['0000000000000000', 63, '0000000000000000', 'ebb773f993278eff'],
    ['ffffffffffffffff', 64, 'ffffffffffffffff', '278b27e42e2f0d49'],
    ['3000000000000000', 64, '1000000000000001', '30649edf9be7d2c2'],
    ['88', 64, '0000000000000000', '61a8a244adacccf0'],
    ['88bca90e90875a', 64, '0000000000000000', '6ccf4308974c267f'],
    ['88bca90e90875a7f0f79c384627bafb2', 64, '0000000000000000', '1a807d272bbe5db1'],
    ['88bca90e90875a7f0f79c384627bafb2', 128, '0000000000000000', '2269552ab0f85ca6'],
  ] as const)('decrypts the RFC 2268 vector for key %s (%i bits)', (key, bits, plain, cipher) => {
    expect(rc2DecryptBlocks(hex(key), bits, hex(cipher)).toString('hex')).toBe(plain);
  });

  it('decrypts what openssl encrypts with rc2-40-cbc, as legacy PKCS#12 files use it', () => {
    const plain = Buffer.from('a certificate bag of a legacy PFX, more or less');
    const key = hex('0123456789');
    const iv = hex('f0e1d2c3b4a59687');
    const cipher = execFileSync('openssl', ['enc', '-rc2-40-cbc', '-provider', 'legacy', '-provider', 'default', '-K', key.toString('hex'), '-iv', iv.toString('hex')], { input: plain });
    expect(rc2CbcDecrypt(key, 40, iv, cipher).equals(plain)).toBe(true);
    // A wrong key leaves bad padding: the caller reads that as a wrong password.
    expect(() => rc2CbcDecrypt(Buffer.alloc(5), 40, iv, cipher)).toThrow();
  });
});
