/**
 * The merchants of `pay.merchants`, with their keys loaded: the private key that signs, the APIv3
 * key that opens notifications, and the verifier of WeChat Pay's signatures. Keys live only here,
 * in memory; nothing of them is logged or answered.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config, ConfigCheck, MerchantConfig } from '../config/index.js';
import { createVerifier, type PayVerifier } from './verifier.js';

export interface Merchant {
  mchid: string;
  appids: readonly string[];
  serial: string;
  privateKey: KeyObject;
  apiV3Key: string;
  verifier: PayVerifier;
  /** Verifies with platform certificates (downloaded and refreshed). */
  certificates: boolean;
  webhook: string | undefined;
}

/** Problems with a merchant's key files, by key path: `minigate validate` and start report them. */
export const payConfigIssues: ConfigCheck = (config: Config) => {
  const issues: { path: (string | number)[]; message: string }[] = [];
  config.pay?.merchants.forEach((m, i) => {
    try {
      const key = createPrivateKey(m.privateKey);
      if (key.asymmetricKeyType !== 'rsa') issues.push({ path: ['pay', 'merchants', i, 'privateKey'], message: 'the merchant API key is an RSA key (apiclient_key.pem)' });
    } catch {
      // Never the key's text: only that it is not a key.
      issues.push({ path: ['pay', 'merchants', i, 'privateKey'], message: 'not a PEM private key (give privateKeyFile: the apiclient_key.pem from the merchant platform)' });
    }
    if (m.publicKeyFile) {
      try {
        createPublicKey(readFileSync(m.publicKeyFile, 'utf8'));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        issues.push({ path: ['pay', 'merchants', i, 'publicKeyFile'], message: code === 'ENOENT' ? `no such file: ${m.publicKeyFile}` : code === 'EACCES' ? `cannot read ${m.publicKeyFile} (permission denied)` : `${m.publicKeyFile} is not a PEM public key (pub_key.pem from API安全 → 微信支付公钥)` });
      }
    }
  });
  return issues;
};

export function loadMerchant(m: MerchantConfig): Merchant {
  const publicKey = m.publicKeyId && m.publicKeyFile ? { id: m.publicKeyId, pem: readFileSync(m.publicKeyFile, 'utf8') } : undefined;
  return {
    mchid: m.mchid,
    appids: m.appids,
    serial: m.serial.toUpperCase(),
    privateKey: createPrivateKey(m.privateKey),
    apiV3Key: m.apiV3Key,
    verifier: createVerifier(publicKey),
    certificates: m.certificates,
    webhook: m.webhook,
  };
}
