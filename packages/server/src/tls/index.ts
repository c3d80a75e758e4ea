/**
 * Certificates for the HTTPS listener: files (PEM, PKCS#12, JKS) watched for changes, ACME
 * (Let's Encrypt), and a local development CA; the manager picks one per server name.
 */
export { createTlsManager, MODERN_CIPHERS, CERT_WATCH_INTERVAL_MS, type TlsManager, type TlsManagerOptions, type CertificateSource } from './manager.js';
export { createAcmeManager, ACME_CHECK_INTERVAL_MS, ACME_RETRY_DELAYS_MS, type AcmeManager, type AcmeDeps, type AcmeSettings } from './acme.js';
export { ensureDevCertificate, selfSignedCertificate, DEV_CA_DIR, type DevCertificate } from './dev-ca.js';
export { CertificateError, loadCertificate, inspectCertificate, dnsNames, EXPIRY_WARNING_DAYS, type CertificateMaterial, type Inspection } from './certificates.js';
export { atsFindings, chainFindings, leafFindings, commonName, daysLeft, describeKey, nameFindings, signatureHash, validityFindings } from './rules.js';
export { certificateConfigIssues } from './config-check.js';
