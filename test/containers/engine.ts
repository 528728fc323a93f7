/**
 * Which container engine a self-test uses, chosen explicitly. Tests that need an engine use the one in
 * DOCKER_HOST (CI starts a private one, containers/engine.sh) and skip, with the reason, when none answers.
 * Tests of the no-engine path pass NO_ENGINE, so an engine on the machine cannot change what they see.
 */
import { spawnSync } from 'node:child_process';

/** DOCKER_HOST pointing at a socket that does not exist: the "no container runtime" path, whatever runs here. */
export const NO_ENGINE = { DOCKER_HOST: 'unix:///nonexistent/hsm-harness-no-engine.sock' };

export function docker(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync('docker', args, { env, encoding: 'utf8', timeout: 60_000 });
}

/** Why the engine tests cannot run here, or undefined when the engine in DOCKER_HOST answers. */
export function engineMissing(): string | undefined {
  if (!process.env.DOCKER_HOST) return 'no engine given: these tests use the engine in DOCKER_HOST (CI starts one with containers/engine.sh)';
  const r = docker(['version', '--format', '{{.Server.Version}}']);
  if (r.status !== 0)
    return `the engine at DOCKER_HOST=${process.env.DOCKER_HOST} does not answer: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  return undefined;
}

/** Every container the harness made (they carry the hsm-harness label), running or not. */
export function harnessContainers(): string[] {
  const r = docker(['ps', '--all', '--filter', 'label=hsm-harness', '--format', '{{.Names}} {{.Status}}']);
  if (r.status !== 0) throw new Error(`docker ps failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** All containers, the harness's or not (a failed build's intermediate container carries no label). */
export function allContainers(): string[] {
  const r = docker(['ps', '--all', '--format', '{{.Names}} {{.Image}} {{.Status}}']);
  if (r.status !== 0) throw new Error(`docker ps failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}
