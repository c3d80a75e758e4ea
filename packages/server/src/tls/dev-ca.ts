/**
 * The local development CA of `minigate dev`: a CA kept in `<dataDir>/dev-ca` and a leaf
 * certificate for localhost, 127.0.0.1 and ::1 that it issues, remade when it nears its end.
 * Trusting ca.pem (curl --cacert, a browser's authorities, the OS) makes HTTPS to minigate dev
 * work without warnings; WeChat DevTools needs "不校验合法域名、web-view（业务域名）、TLS 版本以及 HTTPS 证书".
 */
import { X509Certificate, KeyObject, webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const DEV_CA_DIR = 'dev-ca';

/** @peculiar/x509 loads when a certificate is made (dev CA, ACME's stand-in), not with every server. */
async function loadX509() {
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  return x509;
}
const CA_DAYS = 3650;
const LEAF_DAYS = 365;
/** A leaf with fewer days left is remade at start. */
const LEAF_RENEW_DAYS = 30;
const DAY_MS = 86_400_000;
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface DevCertificate {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** True when the CA was made now (the developer has to trust it once). */
  createdCa: boolean;
}

async function keyPair() {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

function pemKey(key: CryptoKey): string {
  return KeyObject.from(key).export({ format: 'pem', type: 'pkcs8' }).toString();
}

function serial(): string {
  return `01${webcrypto.getRandomValues(new Uint8Array(15)).reduce((s, b) => s + b.toString(16).padStart(2, '0'), '')}`;
}

/** The dev CA and a current localhost certificate, made as needed. */
export async function ensureDevCertificate(dataDir: string, now = Date.now()): Promise<DevCertificate> {
  const x509 = await loadX509();
  const dir = path.join(dataDir, DEV_CA_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caFile = path.join(dir, 'ca.pem');
  const caKeyFile = path.join(dir, 'ca.key');
  const certFile = path.join(dir, 'localhost.pem');
  const keyFile = path.join(dir, 'localhost.key');

  let createdCa = false;
  if (!existsSync(caFile) || !existsSync(caKeyFile)) {
    const keys = await keyPair();
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=minigate dev CA (${path.basename(path.resolve(dataDir))}), O=minigate dev`,
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + CA_DAYS * DAY_MS),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    writeFileSync(caKeyFile, pemKey(keys.privateKey), { mode: 0o600 });
    writeFileSync(caFile, ca.toString('pem') + '\n');
    createdCa = true;
  }

  const leafFresh =
    !createdCa &&
    existsSync(certFile) &&
    existsSync(keyFile) &&
    Date.parse(new X509Certificate(readFileSync(certFile)).validTo) - now > LEAF_RENEW_DAYS * DAY_MS;
  if (!leafFresh) {
    const ca = new x509.X509Certificate(readFileSync(caFile, 'utf8'));
    const caKey = await importPem(readFileSync(caKeyFile, 'utf8'));
    const keys = await keyPair();
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: 'CN=localhost',
      issuer: ca.subject,
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + LEAF_DAYS * DAY_MS),
      signingKey: caKey,
      publicKey: keys.publicKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          { type: 'dns', value: 'localhost' },
          { type: 'ip', value: '127.0.0.1' },
          { type: 'ip', value: '::1' },
        ]),
        await x509.AuthorityKeyIdentifierExtension.create(ca),
      ],
    });
    writeFileSync(keyFile, pemKey(keys.privateKey), { mode: 0o600 });
    writeFileSync(certFile, leaf.toString('pem') + '\n');
  }
  return { caFile, certFile, keyFile, createdCa };
}

async function importPem(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']) as Promise<CryptoKey>;
}

/** A self-signed certificate for `names`, made in memory (served until a real one arrives). */
export async function selfSignedCertificate(names: string[], now = Date.now()): Promise<{ certPem: string; keyPem: string }> {
  const x509 = await loadX509();
  const keys = await keyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${names[0] ?? 'minigate'}`,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 7 * DAY_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: 'dns' as const, value }))),
    ],
  });
  return { certPem: certificate.toString('pem') + '\n', keyPem: pemKey(keys.privateKey) };
}
