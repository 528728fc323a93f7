/**
 * The Nitrokey NetHSM testing container at the tag pinned in containers/nethsm/Dockerfile (never the
 * floating `testing`). Started with testcontainers, waited for on /api/v1/health/state, provisioned with
 * per-run passphrases (src/nethsm/provision.ts). The REST suite runs on the `nethsm` connection; restore
 * goes into a second fresh container (startFresh).
 *
 * PKCS#11: when NETHSM_PKCS11_LIB points at Nitrokey's nethsm-pkcs11 module, a p11nethsm.conf is written
 * for this instance and the PKCS#11 suites run through it too (drivers/nethsm.expect.json records what the
 * module is known not to do).
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Driver, Pkcs11Connection } from '../src/driver.js';
import { DEFAULT_TRAITS } from '../src/driver.js';
import { UsageError } from '../src/errors.js';
import { makeTempDir } from '../src/fsutil.js';
import { containerRuntime } from '../src/containers/runtime.js';
import { imageState, pinnedImage } from '../src/containers/images.js';
import { startNamedContainer } from '../src/containers/start.js';
import { clientFor, markLaunchedContainer, newPassphrases, provisionNethsm, NETHSM_USERS } from '../src/nethsm/provision.js';

const PORT = 8443;
export const P11_SLOT_LABEL = 'hsm-harness-nethsm';

async function startContainer(): Promise<{ baseUrl: string; name: string; stop: () => Promise<void> }> {
  const started = await startNamedContainer('nethsm', pinnedImage('nethsm'), (c, Wait) =>
    c
      .withExposedPorts(PORT)
      .withWaitStrategy(Wait.forHttp('/api/v1/health/state', PORT).usingTls().allowInsecure().forStatusCode(200))
      .withStartupTimeout(120_000),
  );
  const baseUrl = `https://${started.container.getHost()}:${started.container.getMappedPort(PORT)}/api/v1`;
  markLaunchedContainer(baseUrl);
  return { baseUrl, name: started.name, stop: () => started.stop() };
}

/**
 * nethsm-pkcs11 configuration (keys as in Nitrokey/nethsm-pkcs11, p11nethsm.example.conf):
 * both logins, this instance only, bounded timeouts (the default is to wait forever).
 */
export function p11nethsmConf(baseUrl: string, operatorPassphrase: string, adminPassphrase: string): string {
  const q = (s: string) => JSON.stringify(s);
  return [
    '# Written by hsm-harness for one run; removed when the driver stops.',
    // false (the default): true turns on a Java compatibility mode that ignores the names given to keys.
    'enable_set_attribute_value: false',
    'slots:',
    `  - label: ${q(P11_SLOT_LABEL)}`,
    '    operator:',
    `      username: ${q(NETHSM_USERS.operator)}`,
    `      password: ${q(operatorPassphrase)}`,
    '    administrator:',
    `      username: ${q(NETHSM_USERS.admin)}`,
    `      password: ${q(adminPassphrase)}`,
    '    instances:',
    `      - url: ${q(baseUrl)}`,
    '        danger_insecure_cert: true',
    '        max_idle_connections: 10',
    '    retries:',
    '      count: 2',
    '      delay_seconds: 1',
    '    timeout_seconds: 30',
    '',
  ].join('\n');
}

export const driver: Driver = {
  id: 'nethsm',
  title: 'Nitrokey NetHSM (testing container)',
  order: 100,
  envVars: ['NETHSM_PKCS11_LIB'],
  kind: 'nethsm',
  traits: { ...DEFAULT_TRAITS, ephemeral: true, maxConcurrency: 4, caseTimeoutMs: 120_000, startTimeoutMs: 600_000, family: 'nethsm' },
  async probe(env) {
    const lib = env.NETHSM_PKCS11_LIB;
    if (lib && !existsSync(lib)) throw new UsageError(`nethsm: NETHSM_PKCS11_LIB=${lib} does not exist; point it at nethsm-pkcs11-*.so or unset it`);
    const image = pinnedImage('nethsm');
    const rt = await containerRuntime(env);
    if (!rt.ok) return rt;
    // Asked before the run, so that a missing image is "unavailable" with the registry's own error, not a failed start.
    const state = await imageState(image, { ...env, ...rt.env });
    if (state.state === 'unavailable') {
      return { ok: false, reason: `${state.detail} (load it from a machine with a registry: docker pull ${image}; docker save ${image} | docker load)` };
    }
    return { ok: true, reason: `${image} (${state.state}); ${rt.reason}${lib ? `; PKCS#11 through ${lib}` : ''}`, env: rt.env };
  },
  async start(env) {
    const dir = await makeTempDir('nethsm');
    const primary = await startContainer().catch(async (err) => {
      await dir.remove();
      throw err;
    });
    const fresh: { stop: () => Promise<void> }[] = [];
    try {
      const pass = newPassphrases();
      const info = await provisionNethsm(clientFor(primary.baseUrl), pass);
      const lib = env.NETHSM_PKCS11_LIB;
      let pkcs11: Pkcs11Connection | undefined;
      if (lib) {
        const conf = join(dir.path, 'p11nethsm.conf');
        await writeFile(conf, p11nethsmConf(primary.baseUrl, pass.operatorPassphrase, pass.adminPassphrase), { mode: 0o600 });
        pkcs11 = {
          modulePath: lib,
          token: { label: P11_SLOT_LABEL },
          pin: pass.operatorPassphrase,
          env: { P11NETHSM_CONFIG_FILE: conf },
          wrongPinAllowed: true,
        };
      }
      return {
        connections: {
          nethsm: {
            baseUrl: primary.baseUrl,
            ...pass,
            // Called by the suite after start(): the ledger still reaches the parent, so these are released too.
            startFresh: async () => {
              const c = await startContainer();
              fresh.push(c);
              return c;
            },
          },
          ...(pkcs11 ? { pkcs11 } : {}),
        },
        info: { image: pinnedImage('nethsm'), container: primary.name, vendor: info.vendor, product: info.product, ...(lib ? { pkcs11Module: lib } : {}) },
        async stop() {
          for (const c of fresh) await c.stop().catch(() => undefined);
          await primary.stop();
          await dir.remove();
        },
      };
    } catch (err) {
      await primary.stop().catch(() => undefined);
      await dir.remove();
      throw err;
    }
  },
};
