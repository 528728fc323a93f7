/**
 * SoftHSM 2 in the project's container (containers/softhsm), served by p11-kit server onto a bind-mounted
 * socket and reached from the host through p11-kit-client.so: every PKCS#11 suite runs unchanged. Needs a
 * container runtime and a Debian base image: the registry's, or one built from the machine's Debian mirror
 * (src/containers/images.ts). Without them it is unavailable with the reason.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Driver } from '../src/driver.js';
import { DEFAULT_TRAITS } from '../src/driver.js';
import { P11KIT_CLIENT, p11KitRpcName } from '../src/p11kit.js';
import { listWithPkcs11Tool } from '../src/pkcs11/transport.js';
import { randomPin } from '../src/softhsm.js';
import { registerSecret } from '../src/secrets.js';
import { makeTempDir } from '../src/fsutil.js';
import { containerRuntime } from '../src/containers/runtime.js';
import { softhsmImage, softhsmImagePlan } from '../src/containers/softhsm-image.js';
import { startNamedContainer } from '../src/containers/start.js';

const LABEL = 'hsm-harness-container';
/** The SoftHSM module inside the image (containers/softhsm/entrypoint.sh's SOFTHSM_MODULE). */
const CONTAINER_SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const SPARES = 2;

export const driver: Driver = {
  id: 'softhsm-container',
  title: 'SoftHSM 2 in a container via p11-kit',
  order: 80,
  envVars: [],
  kind: 'pkcs11',
  // Building the base image and the SoftHSM image on a cold engine takes minutes.
  traits: { ...DEFAULT_TRAITS, ephemeral: true, startTimeoutMs: 900_000 },
  async probe(env) {
    if (!existsSync(P11KIT_CLIENT)) return { ok: false, reason: `p11-kit client module ${P11KIT_CLIENT} is missing; apt-get install p11-kit-modules` };
    const rt = await containerRuntime(env);
    if (!rt.ok) return rt;
    const plan = await softhsmImagePlan({ ...env, ...rt.env });
    if (!plan.ok) return { ok: false, reason: `containers/softhsm cannot be built: ${plan.reason}` };
    return { ok: true, reason: `containers/softhsm on ${plan.how}; ${rt.reason}`, env: rt.env };
  },
  async start(env, hooks) {
    const pin = randomPin();
    const soPin = randomPin();
    registerSecret(pin);
    registerSecret(soPin);
    const image = await softhsmImage(env, (line) => hooks?.log(line));
    // The socket directory is ours; the container's p11-kit server chowns the socket to our uid/gid. The
    // engine must see it at the same path, so it has to run on this machine (or share this path with it).
    const sockets = await makeTempDir('softhsm-container');
    const started = await startNamedContainer('softhsm-container', image, (c, Wait) =>
      c
        .withEnvironment({
          SOFTHSM_PIN: pin,
          SOFTHSM_SO_PIN: soPin,
          SOFTHSM_TOKEN_LABEL: LABEL,
          SOFTHSM_SPARE_TOKENS: String(SPARES),
          P11_KIT_CLIENT_UID: String(process.getuid?.() ?? 0),
          P11_KIT_CLIENT_GID: String(process.getgid?.() ?? 0),
        })
        .withBindMounts([{ source: sockets.path, target: '/run/p11-kit', mode: 'rw' }])
        .withWaitStrategy(Wait.forLogMessage(/P11_KIT_SERVER_ADDRESS=/))
        .withStartupTimeout(120_000),
    ).catch(async (err) => {
      await sockets.remove();
      throw err;
    });
    const socketPath = join(sockets.path, 'pkcs11');
    // p11-kit prints its address just before it binds: wait for the socket itself.
    for (let i = 0; i < 100 && !existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(socketPath)) {
      await started.stop();
      await sockets.remove();
      throw new Error(`the container's p11-kit socket did not appear in ${sockets.path}`);
    }
    // The entrypoint's second server, exporting only the token under test (for the signers); started just before the first.
    const aloneSocket = join(sockets.path, 'pkcs11-alone');
    for (let i = 0; i < 100 && !existsSync(aloneSocket); i++) await new Promise((r) => setTimeout(r, 50));
    const view = existsSync(aloneSocket)
      ? {
          singleTokenView: {
            env: { P11_KIT_SERVER_ADDRESS: `unix:path=${aloneSocket}` },
            binds: [],
            how: `a second p11-kit server in the container that exports only ${LABEL}`,
          },
        }
      : { noSingleTokenView: `the container's second p11-kit server (${aloneSocket}) did not start; see the container's log` };
    return {
      connections: {
        pkcs11: {
          modulePath: P11KIT_CLIENT,
          token: { label: LABEL },
          pin,
          env: { P11_KIT_SERVER_ADDRESS: `unix:path=${socketPath}` },
          wrongPinAllowed: true,
          spareTokens: Array.from({ length: SPARES }, (_, i) => ({ token: { label: `${LABEL}-spare-${i + 1}` }, pin })),
          backup: { method: 'aes-wrap' },
          ...view,
          // What p11-kit's RPC forwards, against what SoftHSM offers inside the container (pkcs11-tool -M, docker exec).
          transport: {
            name: p11KitRpcName(),
            listDirect: () =>
              listWithPkcs11Tool('docker', ['exec', started.name, 'pkcs11-tool', '--module', CONTAINER_SOFTHSM_MODULE, '--token-label', LABEL], {
                ...process.env,
                ...env,
              }),
          },
        },
      },
      info: { image, container: started.name, socket: socketPath },
      async stop() {
        await started.stop();
        await sockets.remove();
      },
    };
  },
};
