/**
 * A YubiHSM 2 through yubihsm_pkcs11.so. Needs YUBIHSM_PKCS11_CONF (connector = yhusb:// or a connector URL)
 * and YUBIHSM_PIN (auth key id as 4 hex digits followed by its password, e.g. 0001password).
 */
import { DEFAULT_TRAITS } from '../src/driver.js';
import { moduleDriver } from './pkcs11.js';
import { registerSecret } from '../src/secrets.js';
import { UsageError } from '../src/errors.js';

export const YUBIHSM_MODULE = '/usr/lib/x86_64-linux-gnu/pkcs11/yubihsm_pkcs11.so';

export const driver = moduleDriver({
  id: 'yubihsm',
  title: 'YubiHSM 2',
  order: 50,
  envVars: ['YUBIHSM_PKCS11_CONF', 'YUBIHSM_PIN', 'YUBIHSM_PKCS11_MODULE', 'YUBIHSM_WRAP_ROUNDTRIP'],
  traits: { ...DEFAULT_TRAITS, physical: true, maxConcurrency: 8, caseTimeoutMs: 120_000, family: 'yubihsm2' },
  resolve(env) {
    if (!env.YUBIHSM_PKCS11_CONF) return 'YUBIHSM_PKCS11_CONF is not set (attach a YubiHSM 2 and point it at a yubihsm_pkcs11.conf to enable this driver)';
    if (!env.YUBIHSM_PIN) return 'YUBIHSM_PIN is not set (auth key id + password, e.g. 0001password)';
    const modulePath = env.YUBIHSM_PKCS11_MODULE ?? YUBIHSM_MODULE;
    return {
      modulePath,
      token: {},
      readPin: async () => {
        if (!env.YUBIHSM_PIN) throw new UsageError('yubihsm: YUBIHSM_PIN is not set');
        registerSecret(env.YUBIHSM_PIN, 'YUBIHSM_PIN');
        return env.YUBIHSM_PIN;
      },
      env: { YUBIHSM_PKCS11_CONF: env.YUBIHSM_PKCS11_CONF },
      describe: `${modulePath} with ${env.YUBIHSM_PKCS11_CONF}`,
    };
  },
});
