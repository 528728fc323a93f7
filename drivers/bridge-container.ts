/**
 * NLnet Labs' cascade-hsm-bridge (KMIP 1.2 → PKCS#11) in the project's container (containers/bridge: the
 * SoftHSM image plus the bridge from NLnet Labs' package repository), serving KMIP on 5696 with the v1
 * config. Feeds the KMIP suites. The package repository is a build argument; override it with
 * NLNETLABS_APT_URL / NLNETLABS_APT_KEY_URL (a mirror, a staging repository).
 */
import type { Driver } from '../src/driver.js';
import { DEFAULT_TRAITS } from '../src/driver.js';
import { randomPin } from '../src/softhsm.js';
import { registerSecret } from '../src/secrets.js';
import { containerRuntime } from '../src/containers/runtime.js';
import { buildImage } from '../src/containers/images.js';
import { SOFTHSM_CONTAINER_FILES } from './softhsm-container.js';

/** NLnet Labs' Debian repository and its signing key (https://packages.nlnetlabs.nl). */
export const NLNETLABS_APT_URL = 'https://packages.nlnetlabs.nl/linux/debian';
export const NLNETLABS_APT_KEY_URL = 'https://packages.nlnetlabs.nl/aptkey.asc';
const LABEL = 'hsm-harness-bridge';
const KMIP_PORT = 5696;

export const driver: Driver = {
  id: 'bridge-container',
  title: 'cascade-hsm-bridge on SoftHSM in a container',
  order: 90,
  envVars: ['CASCADE_HSM_BRIDGE_VERSION', 'NLNETLABS_APT_URL', 'NLNETLABS_APT_KEY_URL'],
  kind: 'kmip',
  // Building the image on a cold cache (apt inside) takes minutes.
  traits: { ...DEFAULT_TRAITS, ephemeral: true, startTimeoutMs: 900_000 },
  async probe(env) {
    const rt = await containerRuntime(env);
    return rt.ok ? { ok: true, reason: `containers/bridge built from ${env.NLNETLABS_APT_URL || NLNETLABS_APT_URL}, run on the ${rt.reason}` } : rt;
  },
  async start(env) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const pin = randomPin();
    const soPin = randomPin();
    registerSecret(pin);
    registerSecret(soPin);
    const softhsmImage = await buildImage('softhsm', SOFTHSM_CONTAINER_FILES);
    const image = await buildImage('bridge', ['Dockerfile', 'config.toml'], {
      SOFTHSM_IMAGE: softhsmImage,
      NLNETLABS_APT_URL: env.NLNETLABS_APT_URL || NLNETLABS_APT_URL,
      NLNETLABS_APT_KEY_URL: env.NLNETLABS_APT_KEY_URL || NLNETLABS_APT_KEY_URL,
      ...(env.CASCADE_HSM_BRIDGE_VERSION ? { BRIDGE_VERSION: env.CASCADE_HSM_BRIDGE_VERSION } : {}),
    });
    const container = await new GenericContainer(image)
      .withEnvironment({ SOFTHSM_PIN: pin, SOFTHSM_SO_PIN: soPin, SOFTHSM_TOKEN_LABEL: LABEL })
      .withExposedPorts(KMIP_PORT)
      .withWaitStrategy(Wait.forListeningPorts())
      .withStartupTimeout(120_000)
      .start();
    return {
      connections: {
        kmip: {
          host: container.getHost(), port: container.getMappedPort(KMIP_PORT),
          // The bridge makes a new self-signed certificate at every start (no identity in the config).
          insecure: true,
          // The bridge's credential: username = token label, password = user PIN (kmip.md §7).
          username: LABEL, password: pin,
          profile: 'cascade-hsm-bridge', launchedByHarness: true,
        },
      },
      resources: { pids: [], dirs: [] },
      info: { image, containerId: container.getId().slice(0, 12), tokenLabel: LABEL },
      async stop() { await container.stop({ timeout: 5_000 }); },
    };
  },
};
