/**
 * A sandbox merchant for tests that want WeChat Pay on: an RSA key made here, registered at the
 * sandbox in public key mode, and the `pay:` config that uses it (the WeChat Pay public key written
 * to a file in `dir`).
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export const SANDBOX_MCHID = '1900000109';

export async function sandboxMerchant(sandboxUrl: string, dir: string, appid: string, options: { notifyBase?: string; webhook?: string } = {}) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const apiV3Key = 'test0merchant0apiv3key0000000000';
  const serial = 'ABCDEF0123456789';
  const response = await fetch(`${sandboxUrl}/__sandbox/pay/merchants`, {
    method: 'POST',
    body: JSON.stringify({ mchid: SANDBOX_MCHID, serial, publicKey: publicKey.export({ type: 'spki', format: 'pem' }), apiV3Key }),
  });
  if (!response.ok) throw new Error(`sandbox pay/merchants: ${response.status}`);
  const platform = (await response.json()) as { publicKeyId: string; publicKey: string };
  const publicKeyFile = path.join(dir, 'wechatpay_pub_key.pem');
  writeFileSync(publicKeyFile, platform.publicKey);
  return {
    apiBase: sandboxUrl,
    notifyBase: options.notifyBase ?? 'https://api.example.com',
    merchants: [{ mchid: SANDBOX_MCHID, appids: [appid], privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), serial, apiV3Key, publicKeyId: platform.publicKeyId, publicKeyFile, ...(options.webhook ? { webhook: options.webhook } : {}) }],
  };
}
