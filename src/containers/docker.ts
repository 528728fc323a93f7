/**
 * The docker CLI. It honours DOCKER_HOST like testcontainers does, and it is used for what testcontainers
 * does not do well here: building an image and keeping the build's own error message (testcontainers says
 * only "Failed to build image"), and asking whether an image exists or can be pulled. (Removing containers:
 * cleanup.ts.)
 */
import { spawn } from 'node:child_process';
import { which } from '../proc.js';

export interface DockerResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The label every container and image the harness makes carries, so `docker ps -a --filter label=hsm-harness` finds them. */
export const HARNESS_LABEL = 'hsm-harness';

export async function dockerCli(): Promise<string | undefined> {
  return which('docker');
}

/**
 * Run `docker …`, collecting its output. It runs in its own process group, so that `onPid` can hand the pid to
 * the runner, which kills the group if the driver's process dies (a build cut off this way is cancelled by
 * the engine, and --force-rm removes its intermediate containers).
 */
export function docker(
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { timeoutMs?: number; input?: string; onPid?: (pid: number) => void } = {},
): Promise<DockerResult> {
  return new Promise((resolve) => {
    const child = spawn('docker', args, { env, detached: true, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    // Decoded as streams: a character split across two reads stays whole (and so does a secret inside it).
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    if (child.pid) opts.onPid?.(child.pid);
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          stderr += `\ndocker ${args[0]} did not finish within ${Math.round(opts.timeoutMs! / 1000)} s`;
          killGroup(child.pid);
        }, opts.timeoutMs)
      : undefined;
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}\n${err.message}` });
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** The last non-empty line of a failed docker command's stderr: the engine's own message. */
export function lastLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? ''
  );
}
