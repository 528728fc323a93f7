/**
 * The same SoftHSM token served out of process by `p11-kit server` and reached through p11-kit-client.so:
 * the remoting path the SoftHSM container uses, and a check that nothing in the suites depends on the
 * module living in our process.
 */
import { existsSync } from 'node:fs';
import type { Driver } from '../src/driver.js';
import { DEFAULT_TRAITS } from '../src/driver.js';
import { SoftHsmStore, SOFTHSM_MODULE, softhsmAvailable } from '../src/softhsm.js';
import { startP11KitServer, P11KIT_CLIENT, p11KitRpcName } from '../src/p11kit.js';
import { listWithPkcs11Tool } from '../src/pkcs11/transport.js';

export const driver: Driver = {
  id: 'softhsm-p11kit',
  title: 'SoftHSM 2 via p11-kit server',
  order: 20,
  envVars: ['HSM_HARNESS_SOFTHSM_PIN'],
  kind: 'pkcs11',
  traits: { ...DEFAULT_TRAITS, ephemeral: true },
  async probe() {
    const soft = await softhsmAvailable();
    if (!soft.ok) return soft;
    if (!existsSync(P11KIT_CLIENT)) return { ok: false, reason: `p11-kit client module ${P11KIT_CLIENT} is missing; apt-get install p11-kit-modules` };
    return { ok: true, reason: `SoftHSM 2 served by p11-kit server, loaded through ${P11KIT_CLIENT}` };
  },
  async start(env) {
    const store = await SoftHsmStore.create();
    const token = await store.addToken('hsm-harness-remote', env.HSM_HARNESS_SOFTHSM_PIN || undefined);
    const spares = [await store.addToken('hsm-harness-remote-spare-1'), await store.addToken('hsm-harness-remote-spare-2')];
    const server = await startP11KitServer(SOFTHSM_MODULE, [token.label, ...spares.map((t) => t.label)], store.env, store.dir);
    // A second server exporting only the token under test: what a signer is given, so it never sees the spares.
    const alone = await startP11KitServer(SOFTHSM_MODULE, [token.label], store.env, store.dir, 'p11-kit-server-alone');
    return {
      connections: {
        pkcs11: {
          modulePath: P11KIT_CLIENT,
          token: { label: token.label },
          pin: token.pin,
          env: { P11_KIT_SERVER_ADDRESS: server.address },
          wrongPinAllowed: true,
          spareTokens: spares.map((t) => ({ token: { label: t.label }, pin: t.pin })),
          backup: { method: 'aes-wrap' },
          singleTokenView: {
            env: { P11_KIT_SERVER_ADDRESS: alone.address },
            binds: [],
            how: `a second p11-kit server that exports only ${token.label}`,
          },
          // What p11-kit's RPC forwards, against what the SoftHSM module the server loads offers (pkcs11-tool, a child process).
          transport: {
            name: p11KitRpcName(),
            listDirect: () => listWithPkcs11Tool('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', token.label], { ...process.env, ...store.env }),
          },
        },
      },
      info: { serverAddress: server.address, provider: SOFTHSM_MODULE },
      async stop() {
        await server.stop();
        await alone.stop();
        await store.remove();
      },
    };
  },
};
