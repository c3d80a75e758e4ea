/**
 * `minigate check`: for each URL, the checks WeChat's rules imply, in order, each with a verdict
 * and, when it is not a pass, one line on what to do (docs/wechat-api.md §9).
 */
import { isIP } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { EXPIRY_WARNING_DAYS, atsFindings, commonName, daysLeft, describeKey, nameFindings, signatureHash, validityFindings } from '../tls/index.js';
import { handshake, httpProbe, resolveHost, tcpConnect, type Handshake, type ProbeOptions } from './probe.js';
import { TITLES, type CheckId, type CheckReport, type CheckResult, type CheckType, type UrlReport, type Verdict } from './types.js';
import { checkUrl, consoleLine } from './url-rules.js';

export const CHECK_TIMEOUT_MS = 5_000;
/** Days of validity under which a certificate is a warning (the start-up checks use the same rule). */
export const EXPIRY_WARN_DAYS = EXPIRY_WARNING_DAYS;
const FULL_CHAIN_FIX = 'serve the full chain, e.g. fullchain.pem / the _bundle.crt file, not the leaf alone';

const result = (id: CheckId, verdict: Verdict, detail: string, fix?: string): CheckResult => ({ id, title: TITLES[id], verdict, detail, ...(fix ? { fix } : {}) });
const isHandshake = (h: Handshake | { error: string }): h is Handshake => !('error' in h);

/** Private, loopback or link-local: reachable from this machine, not from a phone. */
function isPrivate(address: string): boolean {
  if (isIP(address) === 4) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127) || a === 0;
  }
  const v6 = address.toLowerCase();
  return v6 === '::1' || v6.startsWith('fc') || v6.startsWith('fd') || v6.startsWith('fe80') || v6.startsWith('::ffff:127.') || v6 === '::';
}

const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export async function checkOne(text: string, type: CheckType, options: ProbeOptions): Promise<UrlReport> {
  const checks: CheckResult[] = [];
  let unreachable = false;
  const finish = (): UrlReport => {
    const verdicts = checks.map((c) => c.verdict);
    return { url: text, type, verdict: verdicts.includes('fail') ? 'fail' : verdicts.includes('warn') ? 'warn' : 'pass', unreachable, checks };
  };

  const { result: urlResult, target } = checkUrl(text, type);
  checks.push(urlResult);
  if (!target) return finish();
  const { host, port } = target;
  const consoleCheck = result('console', 'info', `ICP filing (备案) and the console list cannot be checked from here; paste into 开发管理 → 服务器域名: ${consoleLine(type, target.origin)}`);

  // DNS
  const dns = await resolveHost(host, options);
  if ('error' in dns) {
    checks.push(result('dns', 'fail', dns.error, `add an A (or AAAA) record for ${host}, or check the name; --resolve ${host}:IP checks a server before DNS points at it`));
    unreachable = true;
    checks.push(consoleCheck);
    return finish();
  }
  const address = dns.addresses[0]!;
  const privateOnes = dns.addresses.filter(isPrivate);
  if (dns.pinned) checks.push(result('dns', 'info', `${address} (given with --resolve; DNS not asked)`));
  else if (privateOnes.length) checks.push(result('dns', 'warn', `${dns.addresses.join(', ')}: ${privateOnes.join(', ')} is private or loopback`, 'phones on the internet cannot reach that address: publish a public address for the domain'));
  else checks.push(result('dns', 'pass', dns.addresses.join(', ')));

  // TCP
  const tcp = await tcpConnect(address, port, options.timeoutMs);
  if ('error' in tcp) {
    checks.push(result('tcp', 'fail', tcp.error, `open port ${port} to the internet (firewall, security group) and make sure the server listens on it`));
    unreachable = true;
    checks.push(consoleCheck);
    return finish();
  }
  checks.push(result('tcp', 'pass', `${address}:${port} in ${tcp.ms} ms`));

  // TLS versions, one handshake per version.
  const versions = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
  const byVersion = await Promise.all(versions.map((v) => handshake(address, port, host, { ...options, min: v, max: v })));
  const offered = versions.filter((_, i) => isHandshake(byVersion[i]!));
  const label = (v: string) => v.replace('TLSv', '');
  if (!offered.length) {
    const reason = (byVersion[2] as { error: string }).error;
    checks.push(result('tls-versions', 'fail', `no TLS handshake: ${reason}`, 'serve TLS on this port (is it plain HTTP, or the wrong port?)'));
  } else if (!offered.includes('TLSv1.2')) {
    checks.push(result('tls-versions', 'fail', `offers ${offered.map(label).join(', ')}; not 1.2`, 'enable TLS 1.2 (WeChat requires it; keep 1.3 too), e.g. ssl_protocols TLSv1.2 TLSv1.3'));
  } else if (offered.includes('TLSv1') || offered.includes('TLSv1.1')) {
    checks.push(result('tls-versions', 'warn', `offers ${offered.map(label).join(', ')} (1.0/1.1 enabled)`, 'turn off TLS 1.0 and 1.1 unless very old Android devices must connect'));
  } else {
    checks.push(result('tls-versions', 'pass', `offers ${offered.map(label).join(', ')}`));
  }

  // One handshake that validates the chain as sent.
  const main = await handshake(address, port, host, options);
  if (!isHandshake(main)) {
    for (const id of ['chain', 'hostname', 'validity', 'ats', 'trust'] as const) checks.push(result(id, 'skip', `no handshake (${main.error})`));
  } else {
    const leaf = main.leaf!;
    const error = main.authorizationError;
    const selfSigned = error === 'DEPTH_ZERO_SELF_SIGNED_CERT';
    const noIssuer = error === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' || error === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || error === 'UNABLE_TO_GET_ISSUER_CERT';
    // The leaf alone, and its issuer unknown: the classic missing intermediate. With more sent,
    // the chain is there but ends at a CA nobody trusts (a private CA).
    const missingIssuer = noIssuer && main.chain.length <= 1;
    const untrustedTop = noIssuer && main.chain.length > 1;

    // 5. chain
    if (selfSigned) checks.push(result('chain', 'skip', 'a self-signed certificate has no chain (see Trusted root)'));
    else if (missingIssuer) {
      checks.push(result('chain', 'fail', `incomplete: the server sends the leaf alone, and nothing links ${commonName(leaf.issuer)} to a trusted root`, FULL_CHAIN_FIX));
    } else if (untrustedTop) checks.push(result('chain', 'pass', `${main.chain.length} certificates sent, up to ${commonName(top(main, 'subject'))}`));
    else if (error && !['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'SELF_SIGNED_CERT_IN_CHAIN'].includes(error)) {
      checks.push(result('chain', 'fail', `does not verify: ${error}`, FULL_CHAIN_FIX));
    } else checks.push(result('chain', 'pass', `${main.chain.length} certificates up to ${commonName(top(main, 'subject'))}`));

    // 6. hostname, validity
    const [uncovered] = nameFindings(leaf, [host]);
    checks.push(
      uncovered
        ? result('hostname', 'fail', uncovered.message, uncovered.fix)
        : result('hostname', 'pass', `${host} matches ${leaf.checkHost(host) ?? host}`),
    );
    checks.push(validity(leaf, Date.now()));

    // 7. ATS
    const tls12 = byVersion[2]!;
    checks.push(ats(leaf, isHandshake(tls12) ? tls12.cipher : null));

    // 8. trust
    if (selfSigned) checks.push(result('trust', 'fail', 'self-signed: no phone trusts it, and iOS rejects it outright', 'use a certificate from a public CA (e.g. Let\'s Encrypt through tls.acme)'));
    else if (untrustedTop) {
      checks.push(result('trust', 'fail', `the chain ends at ${commonName(top(main, 'subject'))}, issued by ${commonName(top(main, 'issuer'))}, which no system trusts`, 'use a certificate from a public CA; --ca adds a private root for testing only'));
    } else if (error === 'SELF_SIGNED_CERT_IN_CHAIN') checks.push(result('trust', 'fail', `the chain ends in ${commonName(top(main, 'subject'))}, a root no system trusts`, 'use a certificate from a public CA; --ca adds a private root for testing only'));
    else if (missingIssuer) checks.push(result('trust', 'skip', 'unknown until the chain is complete'));
    else {
      const rootDer = main.chain[main.chain.length - 1];
      const viaCa = rootDer !== undefined && options.ca.some((pem) => pemToDer(pem).equals(rootDer));
      checks.push(result('trust', 'pass', `${commonName(top(main, 'subject'))}${viaCa ? ' (trusted through --ca: a private root, for testing)' : ''}`));
    }
  }

  // 9. HTTP
  const pathname = (() => {
    const u = new URL(text);
    return `${u.pathname}${u.search}` || '/';
  })();
  const answer = await httpProbe(address, port, host, pathname, type === 'socket', options.timeoutMs);
  if ('error' in answer) checks.push(result('http', 'fail', `no answer: ${answer.error}`, 'the TLS side works but nothing answers HTTP: check the server behind it'));
  else if (type === 'socket') {
    if (answer.status === 101) checks.push(result('http', 'pass', 'WebSocket upgrade: 101'));
    else if (answer.status === 401 || answer.status === 403) checks.push(result('http', 'pass', `WebSocket upgrade: ${answer.status} (the endpoint wants a session, as minigate's /channel does)`));
    else checks.push(result('http', 'warn', `WebSocket upgrade: ${answer.status}`, 'check the path: it does not look like a WebSocket endpoint (and proxies must pass Upgrade headers)'));
  } else if (answer.status >= 300 && answer.status < 400 && answer.location?.startsWith('http:')) {
    checks.push(result('http', 'fail', `${answer.status} redirect to ${answer.location}`, 'never redirect https to http: WeChat refuses it; fix the server\'s scheme detection behind the proxy'));
  } else if (answer.status >= 500) checks.push(result('http', 'warn', `${answer.status}`, 'the server answers with an error: check its logs'));
  else checks.push(result('http', 'pass', `${answer.status}${answer.location ? ` → ${answer.location}` : ''}`));

  checks.push(consoleCheck);
  return finish();
}

/** The subject or issuer of the last certificate of the verified chain (its top). */
function top(h: Handshake, field: 'subject' | 'issuer'): string {
  const der = h.chain[h.chain.length - 1];
  try {
    return der ? new X509Certificate(der)[field] : '';
  } catch {
    return '';
  }
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function validity(leaf: X509Certificate, now: number): CheckResult {
  const [finding] = validityFindings(leaf, now);
  if (finding) return result('validity', finding.severity === 'error' ? 'fail' : 'warn', finding.message, finding.fix);
  return result('validity', 'pass', `until ${date(Date.parse(leaf.validTo))} (${daysLeft(leaf, now)} days)`);
}

/** The certificate's key and signature (the shared ATS rules), and the TLS 1.2 cipher the server picked. */
function ats(leaf: X509Certificate, tls12Cipher: string | null): CheckResult {
  const findings = atsFindings(leaf);
  const problems = findings.map((f) => f.message);
  const fixes = findings.map((f) => f.fix);
  if (tls12Cipher && !/^ECDHE-/.test(tls12Cipher)) {
    problems.push(`TLS 1.2 cipher ${tls12Cipher} (no ECDHE)`);
    fixes.push('use ECDHE ciphers first, e.g. ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256');
  }
  const summary = `${describeKey(leaf)}, ${signatureHash(leaf)}${tls12Cipher ? `, ${tls12Cipher}` : ''}`;
  if (problems.length) return result('ats', 'fail', `iOS (ATS) refuses: ${problems.join('; ')}`, fixes.join('; '));
  return result('ats', 'pass', summary);
}

/** Checks every URL (a few at a time), bounded as a whole. */
export async function runChecks(urls: { url: string; type: CheckType }[], options: ProbeOptions, overallMs = 120_000): Promise<CheckReport> {
  const results: UrlReport[] = new Array(urls.length);
  let next = 0;
  const worker = async () => {
    while (next < urls.length) {
      const i = next++;
      results[i] = await checkOne(urls[i]!.url, urls[i]!.type, options);
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    Promise.all(Array.from({ length: Math.min(4, urls.length) }, worker)).then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), overallMs);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
  for (let i = 0; i < urls.length; i++) {
    results[i] ??= {
      url: urls[i]!.url,
      type: urls[i]!.type,
      verdict: 'fail',
      unreachable: true,
      checks: [result('tcp', 'fail', `the whole run passed ${overallMs / 1000} s`, 'check fewer URLs at once, or the network')],
    };
  }
  const exitCode = timedOut || results.some((r) => r.unreachable) ? 2 : results.some((r) => r.verdict === 'fail') ? 1 : 0;
  return { version: 1, results, exitCode };
}
