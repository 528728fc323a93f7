/**
 * SoftHSM 2 in the project's container (containers/softhsm), served by p11-kit server onto a bind-mounted
 * socket and reached from the host through p11-kit-client.so: every PKCS#11 suite runs unchanged. Needs a
 * container runtime; without one it is unavailable with the reason.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Driver } from '../src/driver.js';
import { DEFAULT_TRAITS } from '../src/driver.js';
import { P11KIT_CLIENT } from '../src/p11kit.js';
import { randomPin } from '../src/softhsm.js';
import { registerSecret } from '../src/secrets.js';
import { makeTempDir } from '../src/fsutil.js';
import { containerRuntime } from '../src/containers/runtime.js';
import { buildImage } from '../src/containers/images.js';

export const SOFTHSM_CONTAINER_FILES = ['Dockerfile', 'entrypoint.sh'];
const LABEL = 'hsm-harness-container';
const SPARES = 2;

export const driver: Driver = {
  id: 'softhsm-container',
  title: 'SoftHSM 2 in a container via p11-kit',
  order: 80,
  envVars: [],
  kind: 'pkcs11',
  // Building the image on a cold cache (apt inside) takes minutes.
  traits: { ...DEFAULT_TRAITS, ephemeral: true, startTimeoutMs: 900_000 },
  async probe(env) {
    if (!existsSync(P11KIT_CLIENT)) return { ok: false, reason: `p11-kit client module ${P11KIT_CLIENT} is missing; apt-get install p11-kit-modules` };
    const rt = await containerRuntime(env);
    return rt.ok ? { ok: true, reason: `containers/softhsm built and run on the ${rt.reason}` } : rt;
  },
  async start() {
    const { GenericContainer, Wait } = await import('testcontainers');
    const pin = randomPin();
    const soPin = randomPin();
    registerSecret(pin);
    registerSecret(soPin);
    const image = await buildImage('softhsm', SOFTHSM_CONTAINER_FILES);
    // The socket directory is ours; the container's p11-kit server chowns the socket to our uid/gid. The
    // daemon must see it at the same path: when the harness itself runs in a container (CI), TMPDIR points
    // at a directory mounted at the same path on both sides (.github/workflows/ci.yml).
    const sockets = await makeTempDir('softhsm-container');
    const container = await new GenericContainer(image)
      .withEnvironment({
        SOFTHSM_PIN: pin, SOFTHSM_SO_PIN: soPin, SOFTHSM_TOKEN_LABEL: LABEL, SOFTHSM_SPARE_TOKENS: String(SPARES),
        P11_KIT_CLIENT_UID: String(process.getuid?.() ?? 0), P11_KIT_CLIENT_GID: String(process.getgid?.() ?? 0),
      })
      .withBindMounts([{ source: sockets.path, target: '/run/p11-kit', mode: 'rw' }])
      .withWaitStrategy(Wait.forLogMessage(/P11_KIT_SERVER_ADDRESS=/))
      .withStartupTimeout(120_000)
      .start();
    const socketPath = join(sockets.path, 'pkcs11');
    // p11-kit prints its address just before it binds: wait for the socket itself.
    for (let i = 0; i < 100 && !existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(socketPath)) {
      await container.stop();
      await sockets.remove();
      throw new Error(`the container's p11-kit socket did not appear in ${sockets.path}`);
    }
    return {
      connections: {
        pkcs11: {
          modulePath: P11KIT_CLIENT, token: { label: LABEL }, pin,
          env: { P11_KIT_SERVER_ADDRESS: `unix:path=${socketPath}` }, wrongPinAllowed: true,
          spareTokens: Array.from({ length: SPARES }, (_, i) => ({ token: { label: `${LABEL}-spare-${i + 1}` }, pin })), backup: { method: 'aes-wrap' },
        },
      },
      // The container itself is reaped by testcontainers' Ryuk if this process dies.
      resources: { pids: [], dirs: [sockets.path] },
      info: { image, containerId: container.getId().slice(0, 12), socket: socketPath },
      async stop() {
        await container.stop({ timeout: 5_000 });
        await sockets.remove();
      },
    };
  },
};
