/** SoftHSM 2.6.1 loaded in-process, on a fresh token initialised for this run. */
import type { Driver } from '../src/driver.js';
import { DEFAULT_TRAITS } from '../src/driver.js';
import { SoftHsmStore, SOFTHSM_MODULE, softhsmAvailable } from '../src/softhsm.js';

export const driver: Driver = {
  id: 'softhsm',
  title: 'SoftHSM 2 (in-process)',
  order: 10,
  envVars: ['HSM_HARNESS_SOFTHSM_PIN'],
  kind: 'pkcs11',
  traits: { ...DEFAULT_TRAITS, ephemeral: true },
  probe: () => softhsmAvailable(),
  async start(env) {
    const store = await SoftHsmStore.create();
    const token = await store.addToken('hsm-harness', env.HSM_HARNESS_SOFTHSM_PIN || undefined);
    const spares = [await store.addToken('hsm-harness-spare-1'), await store.addToken('hsm-harness-spare-2')];
    return {
      connections: {
        pkcs11: {
          modulePath: SOFTHSM_MODULE,
          token: { label: token.label },
          pin: token.pin,
          env: store.env,
          wrongPinAllowed: true,
          spareTokens: spares.map((t) => ({ token: { label: t.label }, pin: t.pin })),
          backup: { method: 'aes-wrap' },
          singleTokenView: await store.singleTokenView(token),
        },
      },
      info: { tokenDirectory: store.dir },
      stop: () => store.remove(),
    };
  },
};
