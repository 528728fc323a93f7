/**
 * A YubiHSM 2 through yubihsm_pkcs11.so. Needs YUBIHSM_PKCS11_CONF (connector = yhusb:// or a connector URL)
 * and YUBIHSM_PIN (auth key id as 4 hex digits followed by its password, e.g. 0001password). With more than
 * one token, YUBIHSM_SERIAL names the device (never "the first token"). YUBIHSM_WRAP_ROUNDTRIP=1 allows the
 * export → import round trip under a temporary wrap key (suites/dkek/yubihsm-wrap.ts).
 */
import { DEFAULT_TRAITS } from '../src/driver.js';
import { moduleDriver, pinFromEnv } from '../src/pkcs11/module-driver.js';
import { loadModule, trimPadded } from '../src/pkcs11/module.js';
import { UsageError } from '../src/errors.js';

export const YUBIHSM_MODULE = '/usr/lib/x86_64-linux-gnu/pkcs11/yubihsm_pkcs11.so';

export const driver = moduleDriver({
  id: 'yubihsm',
  title: 'YubiHSM 2',
  order: 50,
  envVars: ['YUBIHSM_PKCS11_CONF', 'YUBIHSM_PIN', 'YUBIHSM_PKCS11_MODULE', 'YUBIHSM_WRAP_ROUNDTRIP', 'YUBIHSM_SERIAL'],
  traits: { ...DEFAULT_TRAITS, physical: true, maxConcurrency: 8, caseTimeoutMs: 120_000, family: 'yubihsm2' },
  resolve(env) {
    if (!env.YUBIHSM_PKCS11_CONF) return 'YUBIHSM_PKCS11_CONF is not set (attach a YubiHSM 2 and point it at a yubihsm_pkcs11.conf to enable this driver)';
    if (!env.YUBIHSM_PIN) return 'YUBIHSM_PIN is not set (auth key id + password, e.g. 0001password)';
    const modulePath = env.YUBIHSM_PKCS11_MODULE ?? YUBIHSM_MODULE;
    const backup = { method: 'yubihsm-wrap', enabled: env.YUBIHSM_WRAP_ROUNDTRIP === '1' } as const;
    return {
      modulePath,
      token: env.YUBIHSM_SERIAL ? { serial: env.YUBIHSM_SERIAL } : {},
      readPin: pinFromEnv(env, 'YUBIHSM_PIN', 'yubihsm'),
      env: { YUBIHSM_PKCS11_CONF: env.YUBIHSM_PKCS11_CONF },
      describe: `${modulePath} with ${env.YUBIHSM_PKCS11_CONF}${env.YUBIHSM_SERIAL ? `, serial ${env.YUBIHSM_SERIAL}` : ''}`,
      backup,
      async settle() {
        if (env.YUBIHSM_SERIAL) return { token: { serial: env.YUBIHSM_SERIAL }, backup };
        // One token: that one. Several (one connector can serve several devices): the operator must choose.
        process.env.YUBIHSM_PKCS11_CONF = env.YUBIHSM_PKCS11_CONF;
        const mod = loadModule(modulePath);
        try {
          const serials = mod.lib.C_GetSlotList(true).map((s) => trimPadded(mod.lib.C_GetTokenInfo(s).serialNumber));
          if (serials.length === 1) return { token: { serial: serials[0] }, backup, info: { serial: serials[0] } };
          throw new UsageError(
            serials.length === 0
              ? 'yubihsm: no YubiHSM 2 found through the connector; check YUBIHSM_PKCS11_CONF'
              : `yubihsm: ${serials.length} YubiHSM 2 tokens present (serials ${serials.join(', ')}); set YUBIHSM_SERIAL to the one to test`,
          );
        } finally {
          mod.release();
        }
      },
    };
  },
});
