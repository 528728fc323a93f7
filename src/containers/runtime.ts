/**
 * Is there a container runtime? Asked once per run, in a child process with a kill timer: testcontainers'
 * own discovery has no timeout, and a daemon socket that accepts but never answers would hang it (and the
 * harness's exit) forever (ecosystem.md §5). Only the verdict comes back; the child is killed either way.
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { projectRoot } from '../paths.js';

export interface RuntimeVerdict { ok: boolean; reason: string }

/** Every "unavailable" reason starts with this, so reports and tests can tell the cause apart. */
export const NO_RUNTIME = 'no container runtime';

export const DEFAULT_PROBE_TIMEOUT_MS = 4_000;

/** The compiled child; tests running from src/ use the build in dist/ (npm test builds first). */
function childPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return join(here, '..', 'probe-child.js');
  const built = join(projectRoot(), 'dist', 'src', 'containers', 'probe-child.js');
  if (!existsSync(built)) throw new Error('dist/ is missing: run npm run build first');
  return built;
}

/** One probe, uncached. Resolves within timeoutMs (plus process start) whatever the runtime does. */
export function probeContainerRuntime(env: NodeJS.ProcessEnv, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<RuntimeVerdict> {
  return new Promise((resolve) => {
    let settled = false;
    const child = fork(childPath(), [], { env, stdio: ['ignore', 'ignore', 'ignore', 'ipc'], serialization: 'json' });
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
    const timer = setTimeout(() => finish({
      ok: false,
      reason: `${NO_RUNTIME}: the runtime did not answer within ${(timeoutMs / 1000).toFixed(1)} s (${where(env)})`,
    }), timeoutMs);
    child.on('message', (m: { ok: boolean; detail: string }) => finish(m.ok
      ? { ok: true, reason: `container runtime: ${m.detail}` }
      : { ok: false, reason: `${NO_RUNTIME} (${where(env)}): ${m.detail}` }));
    child.on('error', (err) => finish({ ok: false, reason: `${NO_RUNTIME}: probe could not start: ${err.message}` }));
    child.on('exit', (code, signal) => finish({ ok: false, reason: `${NO_RUNTIME}: probe exited (${signal ?? code}) without a verdict` }));
  });
}

function where(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_HOST ? `DOCKER_HOST=${env.DOCKER_HOST}` : 'default Docker/Podman sockets';
}

let cached: Promise<RuntimeVerdict> | undefined;

/**
 * The run's verdict: the first call probes, later calls (the other container drivers) share the answer.
 * HSM_CONTAINER_PROBE_TIMEOUT_MS overrides the cap.
 */
export function containerRuntime(env: NodeJS.ProcessEnv): Promise<RuntimeVerdict> {
  const ms = Number(env.HSM_CONTAINER_PROBE_TIMEOUT_MS) > 0 ? Number(env.HSM_CONTAINER_PROBE_TIMEOUT_MS) : DEFAULT_PROBE_TIMEOUT_MS;
  cached ??= probeContainerRuntime(env, ms);
  return cached;
}
