/**
 * A physically attached SmartCard-HSM / Nitrokey HSM 2 through OpenSC's opensc-pkcs11.so. Needs SCHSM_PIN
 * (and optionally SCHSM_READER, a substring of the reader name). One command at a time, slow key generation.
 */
import { DEFAULT_TRAITS } from '../src/driver.js';
import { moduleDriver } from './pkcs11.js';
import { registerSecret } from '../src/secrets.js';
import { UsageError } from '../src/errors.js';

export const OPENSC_MODULE = '/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so';

export const driver = moduleDriver({
  id: 'smartcard-hsm',
  title: 'SmartCard-HSM / Nitrokey HSM 2 (OpenSC)',
  order: 40,
  envVars: ['SCHSM_PIN', 'SCHSM_READER', 'SCHSM_PKCS11_MODULE', 'SCHSM_SO_PIN', 'SCHSM_ALLOW_INITIALIZE', 'SCHSM_DKEK_*'],
  traits: { ...DEFAULT_TRAITS, physical: true, maxConcurrency: 1, caseTimeoutMs: 300_000, family: 'smartcard-hsm' },
  resolve(env) {
    if (!env.SCHSM_PIN) return 'SCHSM_PIN is not set (attach a SmartCard-HSM and export its user PIN to enable this driver)';
    const modulePath = env.SCHSM_PKCS11_MODULE ?? OPENSC_MODULE;
    return {
      modulePath,
      token: env.SCHSM_READER ? { slotDescriptionIncludes: env.SCHSM_READER, labelIncludes: 'UserPIN' } : { labelIncludes: 'UserPIN' },
      readPin: async () => {
        if (!env.SCHSM_PIN) throw new UsageError('smartcard-hsm: SCHSM_PIN is not set');
        registerSecret(env.SCHSM_PIN, 'SCHSM_PIN');
        return env.SCHSM_PIN;
      },
      env: {},
      describe: `${modulePath}${env.SCHSM_READER ? ` in reader "${env.SCHSM_READER}"` : ''}`,
    };
  },
});
