/**
 * NLnet Labs' cascade-hsm-bridge (KMIP 1.2 → PKCS#11) in the project's container (containers/bridge: the
 * SoftHSM image plus the bridge from NLnet Labs' package repository), serving KMIP on 5696 with the v1
 * config. Feeds the KMIP suites. The package repository is a build argument; override it with
 * NLNETLABS_APT_URL / NLNETLABS_APT_KEY_URL (a mirror, a staging repository).
 *
 * Unless the image is already in the engine, the probe fetches the repository's signing key once: when the
 * repository cannot be reached the driver is unavailable with that error, instead of failing a minute into
 * a build. A build that fails anyway reports the failing step's own error.
 */
import type { Driver } from '../src/driver.js';
import { DEFAULT_TRAITS } from '../src/driver.js';
import { randomPin } from '../src/softhsm.js';
import { registerSecret } from '../src/secrets.js';
import { containerRuntime } from '../src/containers/runtime.js';
import { buildImage, imageState, localImageName } from '../src/containers/images.js';
import { startNamedContainer } from '../src/containers/start.js';
import { softhsmImage, softhsmImageName, softhsmImagePlan } from '../src/containers/softhsm-image.js';

/** NLnet Labs' Debian repository and its signing key (https://packages.nlnetlabs.nl). */
export const NLNETLABS_APT_URL = 'https://packages.nlnetlabs.nl/linux/debian';
export const NLNETLABS_APT_KEY_URL = 'https://packages.nlnetlabs.nl/aptkey.asc';
const BRIDGE_FILES = ['Dockerfile', 'config.toml'];
const LABEL = 'hsm-harness-bridge';
const KMIP_PORT = 5696;

export function bridgeBuildArgs(env: NodeJS.ProcessEnv, softhsmImage: string): Record<string, string> {
  return {
    SOFTHSM_IMAGE: softhsmImage,
    NLNETLABS_APT_URL: env.NLNETLABS_APT_URL || NLNETLABS_APT_URL,
    NLNETLABS_APT_KEY_URL: env.NLNETLABS_APT_KEY_URL || NLNETLABS_APT_KEY_URL,
    ...(env.CASCADE_HSM_BRIDGE_VERSION ? { BRIDGE_VERSION: env.CASCADE_HSM_BRIDGE_VERSION } : {}),
  };
}

/** Why the package repository cannot be reached from here, or undefined when it answers. */
export async function repositoryUnreachable(keyUrl: string, timeoutMs = 10_000): Promise<string | undefined> {
  try {
    const res = await fetch(keyUrl, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok ? undefined : `${keyUrl} answered HTTP ${res.status}`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; hostname?: string; message?: string } }).cause;
    const host = new URL(keyUrl).hostname;
    if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') return `Could not resolve host: ${host} (${cause.code}) fetching ${keyUrl}`;
    if ((err as Error).name === 'TimeoutError') return `${keyUrl} did not answer within ${timeoutMs / 1000} s`;
    return `fetching ${keyUrl} failed: ${cause?.message ?? (err as Error).message}`;
  }
}

export const driver: Driver = {
  id: 'bridge-container',
  title: 'cascade-hsm-bridge on SoftHSM in a container',
  order: 90,
  envVars: ['CASCADE_HSM_BRIDGE_VERSION', 'NLNETLABS_APT_URL', 'NLNETLABS_APT_KEY_URL'],
  kind: 'kmip',
  // Building the images on a cold engine (apt inside) takes minutes.
  traits: { ...DEFAULT_TRAITS, ephemeral: true, startTimeoutMs: 900_000 },
  async probe(env) {
    const rt = await containerRuntime(env);
    if (!rt.ok) return rt;
    const e = { ...env, ...rt.env };
    const plan = await softhsmImagePlan(e);
    if (!plan.ok) return { ok: false, reason: `containers/bridge cannot be built: ${plan.reason}` };
    const image = localImageName('bridge', BRIDGE_FILES, JSON.stringify(bridgeBuildArgs(e, softhsmImageName(plan.image))));
    if (!plan.build && (await imageState(image, e, false)).state === 'local')
      return { ok: true, reason: `${image} (in the engine); ${rt.reason}`, env: rt.env };
    const keyUrl = e.NLNETLABS_APT_KEY_URL || NLNETLABS_APT_KEY_URL;
    const unreachable = await repositoryUnreachable(keyUrl);
    if (unreachable) return { ok: false, reason: `containers/bridge cannot be built: NLnet Labs' package repository is unreachable: ${unreachable}` };
    return { ok: true, reason: `containers/bridge built from ${e.NLNETLABS_APT_URL || NLNETLABS_APT_URL} on ${plan.how}; ${rt.reason}`, env: rt.env };
  },
  async start(env, hooks) {
    const pin = randomPin();
    const soPin = randomPin();
    registerSecret(pin);
    registerSecret(soPin);
    const say = (line: string) => hooks?.log(line);
    const image = await buildImage('bridge', BRIDGE_FILES, bridgeBuildArgs(env, await softhsmImage(env, say)), env, say);
    const started = await startNamedContainer('bridge-container', image, (c, Wait) =>
      c
        .withEnvironment({ SOFTHSM_PIN: pin, SOFTHSM_SO_PIN: soPin, SOFTHSM_TOKEN_LABEL: LABEL })
        .withExposedPorts(KMIP_PORT)
        .withWaitStrategy(Wait.forListeningPorts())
        .withStartupTimeout(120_000),
    );
    return {
      connections: {
        kmip: {
          host: started.container.getHost(),
          port: started.container.getMappedPort(KMIP_PORT),
          // The bridge makes a new self-signed certificate at every start (no identity in the config).
          insecure: true,
          // The bridge's credential: username = token label, password = user PIN.
          username: LABEL,
          password: pin,
          profile: 'cascade-hsm-bridge',
          launchedByHarness: true,
        },
      },
      info: { image, container: started.name, tokenLabel: LABEL },
      async stop() {
        await started.stop();
      },
    };
  },
};
