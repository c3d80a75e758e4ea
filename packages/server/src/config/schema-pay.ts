/** `pay:` — WeChat Pay v3 for mini programs (docs/pay.md). Optional: without it nothing of pay runs. */
import { z } from 'zod';
import { duration, filePath, secret } from './schema-types.js';

export const PAY_API_BASE_DEFAULT = 'https://api.mch.weixin.qq.com';
export const PAY_TIMEOUT_DEFAULT = '10s';
const APPID = /^wx[0-9a-zA-Z]{16}$/;

export const merchantSchema = z
  .strictObject({
    mchid: z
      .string()
      .regex(/^\d{6,12}$/, { error: 'expected the 商户号: digits' })
      .meta({ description: 'The merchant number (商户号).' }),
    appids: z
      .array(z.string().regex(APPID, { error: 'expected an AppID' }))
      .min(1)
      .meta({ description: 'The apps (apps[].appid) this merchant takes payments for (bound under 产品中心 → AppID账号管理).' }),
    privateKey: secret('The merchant API private key (apiclient_key.pem). Signs every call and the payment parameters; give it as privateKeyFile.'),
    serial: z
      .string()
      .regex(/^[0-9A-Fa-f]{8,64}$/, { error: 'expected the merchant API certificate serial number (hex)' })
      .meta({ description: 'The serial number of the merchant API certificate (账户中心 → API安全 → 管理证书).' }),
    apiV3Key: secret('The APIv3 key (API安全 → 设置APIv3密钥): exactly 32 bytes; decrypts notifications and certificates.').refine((key) => Buffer.byteLength(key, 'utf8') === 32, {
      error: 'the APIv3 key is exactly 32 bytes (ASCII letters and digits as set on the merchant platform); check for a missing or extra character or a trailing space',
    }),
    publicKeyId: z
      .string()
      .regex(/^PUB_KEY_ID_[0-9A-Za-z_]+$/, { error: 'expected the WeChat Pay public key ID (PUB_KEY_ID_…)' })
      .optional()
      .meta({ description: 'The WeChat Pay public key ID (API安全 → 微信支付公钥), the current way to verify WeChat Pay.' }),
    publicKeyFile: filePath('The WeChat Pay public key (pub_key.pem) downloaded beside its ID.').optional(),
    certificates: z
      .boolean()
      .default(false)
      .meta({
        description:
          'Verify with platform certificates (the older mode): downloaded from /v3/certificates at start and every 12 hours. With publicKeyId as well, both are accepted (a merchant migrating to the public key).',
      }),
    webhook: z
      .url({ protocol: /^https?$/ })
      .optional()
      .meta({ description: 'Where payment and refund events of this merchant go (POST JSON, signed with upstreamSecret, retried).' }),
  })
  .superRefine((m, ctx) => {
    if (!!m.publicKeyId !== !!m.publicKeyFile) ctx.addIssue({ code: 'custom', path: [m.publicKeyId ? 'publicKeyFile' : 'publicKeyId'], message: 'publicKeyId and publicKeyFile go together' });
    if (!m.publicKeyId && !m.certificates) ctx.addIssue({ code: 'custom', path: ['publicKeyId'], message: 'say how to verify WeChat Pay: publicKeyId + publicKeyFile, or certificates: true (or both while migrating)' });
  })
  .meta({ description: 'One merchant account (直连商户).' });

export const paySchema = z
  .strictObject({
    apiBase: z
      .url({ protocol: /^https?$/, error: 'expected an http(s) URL' })
      .default(PAY_API_BASE_DEFAULT)
      .meta({ description: "WeChat Pay's API; the sandbox in dev and tests." }),
    timeout: duration('Time limit for one call to WeChat Pay.', '100ms').prefault(PAY_TIMEOUT_DEFAULT),
    notifyBase: z
      .url({ protocol: /^https?$/ })
      .meta({
        description: 'The public origin WeChat Pay sends notifications to (https://api.example.com); minigate gives WeChat <notifyBase>/pay/notify/<mchid>. WeChat wants https and no query.',
      }),
    reconcileAfter: duration(
      'An unpaid order whose notification has not come is asked about at WeChat Pay this long after it was made (and then every minute, for a day): the reconciliation.',
      '1s',
    ).prefault('5m'),
    mchidRequired: z
      .boolean()
      .default(false)
      .meta({ description: 'Every order call names its mchid; needed when an appid is under two merchants (otherwise validate refuses the config).' }),
    merchants: z.array(merchantSchema).min(1).meta({ description: 'The merchant accounts.' }),
  })
  .superRefine((pay, ctx) => {
    const seen = new Map<string, string>();
    pay.merchants.forEach((m, i) => {
      if (pay.merchants.findIndex((o) => o.mchid === m.mchid) !== i) ctx.addIssue({ code: 'custom', path: ['merchants', i, 'mchid'], message: 'each mchid may appear only once' });
      m.appids.forEach((appid, j) => {
        const other = seen.get(appid);
        if (other && other !== m.mchid && !pay.mchidRequired) {
          ctx.addIssue({ code: 'custom', path: ['merchants', i, 'appids', j], message: `${appid} is under merchants ${other} and ${m.mchid}: set pay.mchidRequired: true so that each order call names its merchant` });
        }
        seen.set(appid, m.mchid);
      });
    });
  })
  .meta({ description: 'WeChat Pay v3 (docs/pay.md). Optional.' });

export type PayConfig = z.output<typeof paySchema>;
export type MerchantConfig = PayConfig['merchants'][number];
