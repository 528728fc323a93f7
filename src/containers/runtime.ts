/**
 * Is there a container runtime, and how do the container drivers use it this run? Asked once per run, in a
 * child process with a kill timer: testcontainers' own discovery has no timeout, and a daemon socket that
 * accepts but never answers would hang it (and the harness's exit) forever. Only the verdict comes back;
 * the child is killed either way.
 *
 * Two settings are decided here, once, and handed to the drivers' processes through Availability.env:
 * - the host of the containers' published ports, pinned to 127.0.0.1 when the engine is on this machine (a
 *   unix socket). testcontainers otherwise guesses from /.dockerenv that it runs in a container and uses the
 *   bridge gateway, which the KMIP robustness suite rightly refuses as not loopback. A TESTCONTAINERS_HOST_OVERRIDE
 *   set by the user wins (e.g. a CI job in a container that talks to its host's engine).
 * - the reaper: testcontainers starts its Ryuk image to remove containers of a process that died. When that
 *   image is neither in the engine nor pullable, Ryuk is turned off (TESTCONTAINERS_RYUK_DISABLED) and the
 *   harness removes its containers itself (the ledger, src/containers/cleanup.ts).
 */
import { forkHarness } from '../proc.js';
import { dockerCli } from './docker.js';
import { imageState } from './images.js';

export interface RuntimeVerdict {
  ok: boolean;
  reason: string;
  env?: Record<string, string>;
}

/** Every "unavailable" reason starts with this, so reports and tests can tell the cause apart. */
export const NO_RUNTIME = 'no container runtime';

// From the moment the child has loaded testcontainers. Only a hung socket waits this long.
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;

/** Loading testcontainers in the child is bounded too, but generously: a loaded machine needs time, a socket is not involved yet. */
const LOAD_BOUND_MS = 120_000;

/**
 * One probe, uncached. Resolves within timeoutMs of the child having loaded testcontainers (plus process start
 * and module loading, bounded by LOAD_BOUND_MS) whatever the runtime does.
 */
export function probeContainerRuntime(env: NodeJS.ProcessEnv, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<RuntimeVerdict> {
  return new Promise((resolve) => {
    let settled = false;
    const child = forkHarness('containers/probe-child.js', { env, output: 'ignore' });
    const finish = (v: RuntimeVerdict) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // SIGKILL: a child stuck in a request on a dead socket must not outlive the verdict.
      child.kill('SIGKILL');
      if (child.connected) child.disconnect();
      child.unref();
      resolve(v);
    };
    const arm = (ms: number, reason: string) => setTimeout(() => finish({ ok: false, reason: `${NO_RUNTIME}: ${reason} (${where(env)})` }), ms);
    let timer = arm(LOAD_BOUND_MS, `the probe did not load testcontainers within ${LOAD_BOUND_MS / 1000} s`);
    child.on('message', (m: { type: 'loaded' } | { type: 'verdict'; ok: boolean; detail: string }) => {
      if (m.type === 'loaded') {
        clearTimeout(timer);
        timer = arm(timeoutMs, `the runtime did not answer within ${(timeoutMs / 1000).toFixed(1)} s`);
        return;
      }
      finish(m.ok ? { ok: true, reason: `container runtime: ${m.detail}` } : { ok: false, reason: `${NO_RUNTIME} (${where(env)}): ${m.detail}` });
    });
    child.on('error', (err) => finish({ ok: false, reason: `${NO_RUNTIME}: probe could not start: ${err.message}` }));
    child.on('exit', (code, signal) => finish({ ok: false, reason: `${NO_RUNTIME}: probe exited (${signal ?? code}) without a verdict` }));
  });
}

function where(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_HOST ? `DOCKER_HOST=${env.DOCKER_HOST}` : 'default Docker/Podman sockets';
}

/** The engine is on this machine when it is reached through a unix socket (DOCKER_HOST unset means the default one). */
export function hostPin(env: NodeJS.ProcessEnv): Record<string, string> {
  if (env.TESTCONTAINERS_HOST_OVERRIDE !== undefined) return {};
  if (env.DOCKER_HOST && !env.DOCKER_HOST.startsWith('unix://')) return {};
  return { TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1' };
}

/** The image testcontainers' reaper would start (RYUK_CONTAINER_IMAGE overrides it, as in testcontainers). */
export const RYUK_IMAGE_DEFAULT = 'testcontainers/ryuk:0.14.0';

/** Ryuk if its image can be had, else off, with a sentence for the availability reason. */
export async function reaperSetting(env: NodeJS.ProcessEnv): Promise<{ env: Record<string, string>; note: string }> {
  if (env.TESTCONTAINERS_RYUK_DISABLED === 'true') return { env: {}, note: 'reaper off (TESTCONTAINERS_RYUK_DISABLED); the harness removes its containers' };
  const image = env.RYUK_CONTAINER_IMAGE || RYUK_IMAGE_DEFAULT;
  const s = await imageState(image, env);
  if (s.state !== 'unavailable') return { env: {}, note: `reaper ${image} (${s.state})` };
  return { env: { TESTCONTAINERS_RYUK_DISABLED: 'true' }, note: `reaper off, the harness removes its containers (${s.detail})` };
}

let cached: Promise<RuntimeVerdict> | undefined;

/**
 * The run's verdict: the first call probes, later calls (the other container drivers) share the answer.
 * HSM_CONTAINER_PROBE_TIMEOUT_MS overrides the cap.
 */
export function containerRuntime(env: NodeJS.ProcessEnv): Promise<RuntimeVerdict> {
  const ms = Number(env.HSM_CONTAINER_PROBE_TIMEOUT_MS) > 0 ? Number(env.HSM_CONTAINER_PROBE_TIMEOUT_MS) : DEFAULT_PROBE_TIMEOUT_MS;
  cached ??= (async () => {
    const pin = hostPin(env);
    const v = await probeContainerRuntime({ ...env, ...pin }, ms);
    if (!v.ok) return v;
    if (!(await dockerCli())) {
      return {
        ok: false,
        reason: `${NO_RUNTIME} client: the harness builds images and removes containers with the docker CLI, which is not on PATH (Debian: apt-get install docker.io; Podman: podman-docker)`,
      };
    }
    const reaper = await reaperSetting({ ...env, ...pin });
    return { ok: true, reason: `${v.reason}; ${reaper.note}`, env: { ...pin, ...reaper.env } };
  })();
  return cached;
}
