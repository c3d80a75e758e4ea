/**
 * `tls.certificates` checked while the config loads (a ConfigCheck), so that `minigate validate`
 * refuses what `start` would: files missing or unreadable, a key that does not match, a file
 * with no certificate, a CA certificate as the leaf, a chain out of order, an expired one. The
 * same loading and rules as the TLS manager at start (certificates.ts, rules.ts), so the two
 * cannot disagree. Warnings (weak key, untrusted root) are left to start and `minigate check`.
 */
import type { CertificateConfig, Config, ConfigCheck } from '../config/index.js';
import { CertificateError, inspectCertificate, loadCertificate } from './certificates.js';

/** Why each refusal matters to a mini program, added to the messages that do not say it. */
const NEEDS_CERTIFICATE = 'WeChat only calls server domains over HTTPS with a valid certificate';

type Field = 'cert' | 'key' | 'chain' | 'pfx' | 'jks';

export const certificateConfigIssues: ConfigCheck = (config: Config) => {
  // Certificates are loaded only for an HTTPS listener (the TLS step is skipped without one).
  if (!config.listen.https) return [];
  const now = Date.now();
  return config.tls.certificates.flatMap((entry, i) => {
    const at = (field: Field | undefined) => ['tls', 'certificates', i, ...(field ? [field] : [])];
    try {
      const material = loadCertificate(entry);
      return inspectCertificate(material, now).errors.map((message) => ({ path: at(undefined), message }));
    } catch (error) {
      if (!(error instanceof CertificateError)) throw error;
      const message = /WeChat/.test(error.message) ? error.message : `${error.message} (${NEEDS_CERTIFICATE})`;
      return [{ path: at(fieldOf(entry, error.message)), message }];
    }
  });
};

/**
 * Which key of the entry a loading error is about: its message starts with the file's path
 * (and a key that does not fit is the key's fault, whichever file the message names first).
 */
function fieldOf(entry: CertificateConfig, message: string): Field | undefined {
  const aboutKey = /private key/.test(message) && entry.key !== undefined;
  const fields: Field[] = aboutKey ? ['key'] : ['cert', 'chain', 'key', 'pfx', 'jks'];
  return fields.find((field) => {
    const file = entry[field];
    return file !== undefined && message.startsWith(`${file}:`);
  }) ?? fields.find((field) => entry[field] !== undefined);
}
