/**
 * Test certificates made with the openssl CLI, as an operator makes them: a root CA, an
 * intermediate, and leaves it issues; PFX and JKS copies of a leaf (keytool, from the JDK).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCa {
  dir: string;
  rootPem: string; // path
  intermediatePem: string;
  intermediateKey: string;
}

export interface TestLeaf {
  cert: string; // leaf only
  key: string;
  chain: string; // the intermediate
  fullchain: string; // leaf + intermediate
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

export function makeCa(name = 'Minigate Test'): TestCa {
  const dir = mkdtempSync(path.join(tmpdir(), 'mg-pki-'));
  writeFileSync(
    path.join(dir, 'ca.ext'),
    'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n',
  );
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-days', '3650', '-subj', `/CN=${name} Root CA`, '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'intermediate.key', '-out', 'intermediate.csr', '-subj', `/CN=${name} Intermediate CA`], dir);
  openssl(['x509', '-req', '-in', 'intermediate.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'intermediate.pem', '-days', '1825', '-sha256', '-extfile', 'ca.ext'], dir);
  return { dir, rootPem: path.join(dir, 'root.pem'), intermediatePem: path.join(dir, 'intermediate.pem'), intermediateKey: path.join(dir, 'intermediate.key') };
}

let serial = 0;

/** A leaf for `names` issued by the intermediate (or `days` < 0 for an already expired one). */
export function makeLeaf(
  ca: TestCa,
  names: string[],
  options: { days?: number; key?: 'rsa:2048' | 'rsa:1024' | 'ec'; label?: string; md?: 'sha256' | 'sha1'; dates?: { start: string; end: string } } = {},
): TestLeaf {
  const label = options.label ?? `leaf${++serial}`;
  const dir = ca.dir;
  const md = options.md ?? 'sha256';
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(path.join(dir, `${label}.ext`), `basicConstraints=CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
  const keyArgs = options.key === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', options.key ?? 'rsa:2048'];
  openssl(['req', ...keyArgs, '-nodes', '-keyout', `${label}.key`, '-out', `${label}.csr`, '-subj', `/CN=${names[0]}`], dir);
  const days = options.days ?? 90;
  // openssl 3.0 has no -not_before on x509: set dates (an expired or a future leaf) with the ca command.
  const dates = options.dates ?? (days > 0 ? undefined : { start: '20200101000000Z', end: '20200201000000Z' });
  if (!dates) {
    openssl(['x509', '-req', '-in', `${label}.csr`, '-CA', 'intermediate.pem', '-CAkey', 'intermediate.key', '-CAcreateserial', '-out', `${label}.pem`, '-days', String(days), `-${md}`, '-extfile', `${label}.ext`], dir);
  } else {
    writeFileSync(path.join(dir, 'index.txt'), '');
    writeFileSync(path.join(dir, 'ca.cnf'), `[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial.txt\ndefault_md=${md}\npolicy=p\ncopy_extensions=none\nunique_subject=no\n[p]\ncommonName=supplied\n`);
    writeFileSync(path.join(dir, 'serial.txt'), `${(1000 + serial).toString(16).padStart(4, '0')}\n`);
    openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'intermediate.pem', '-keyfile', 'intermediate.key', '-in', `${label}.csr`, '-out', `${label}.pem`, '-startdate', dates.start, '-enddate', dates.end, '-extfile', `${label}.ext`, '-notext'], dir);
  }
  const fullchain = path.join(dir, `${label}.fullchain.pem`);
  writeFileSync(fullchain, readFileSync(path.join(dir, `${label}.pem`), 'utf8') + readFileSync(ca.intermediatePem, 'utf8'));
  return { cert: path.join(dir, `${label}.pem`), key: path.join(dir, `${label}.key`), chain: ca.intermediatePem, fullchain };
}

/** A PKCS#12 copy of a leaf with its chain (`legacy`: RC2/3DES as old Tomcat and IIS exports). */
export function makePfx(leaf: TestLeaf, passphrase: string, options: { legacy?: boolean } = {}): string {
  const out = leaf.cert.replace(/\.pem$/, options.legacy ? '.legacy.p12' : '.p12');
  openssl(['pkcs12', '-export', ...(options.legacy ? ['-legacy'] : []), '-in', leaf.cert, '-inkey', leaf.key, '-certfile', leaf.chain, '-out', out, '-passout', `pass:${passphrase}`], path.dirname(leaf.cert));
  return out;
}

/** A JKS keystore (Java's own format, as `keytool -storetype JKS` writes it) holding the leaf. */
export function makeJks(leaf: TestLeaf, password: string, alias = 'tomcat'): string {
  const pfx = makePfx(leaf, password);
  const out = leaf.cert.replace(/\.pem$/, '.jks');
  execFileSync(
    'keytool',
    ['-importkeystore', '-srckeystore', pfx, '-srcstoretype', 'PKCS12', '-srcstorepass', password, '-destkeystore', out, '-deststoretype', 'JKS', '-deststorepass', password, '-destkeypass', password, '-srcalias', '1', '-destalias', alias, '-noprompt'],
    { stdio: 'pipe' },
  );
  return out;
}
