/**
 * The docker CLI. It honours DOCKER_HOST like testcontainers does, and it is used for what testcontainers
 * does not do well here: building an image and keeping the build's own error message (testcontainers says
 * only "Failed to build image"), and asking whether an image exists or can be pulled. (Removing containers:
 * cleanup.ts.)
 */
import { runTool, which } from '../proc.js';

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
 * Run `docker …`, collecting its output. It runs in its own process group, held in the ledger while it runs,
 * so the runner kills the group if the driver's process dies (a build cut off this way is cancelled by the
 * engine, and --force-rm removes its intermediate containers).
 */
export function docker(args: string[], env: NodeJS.ProcessEnv, opts: { timeoutMs: number; input?: string }): Promise<DockerResult> {
  return runTool('docker', args, { env, timeoutMs: opts.timeoutMs, input: opts.input, group: true });
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
