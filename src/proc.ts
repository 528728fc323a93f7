/**
 * Running the external tools the harness orchestrates (softhsm2-util, p11-kit, pykmip-server …).
 * Errors name the tool and its exit, never the arguments, because arguments may carry a PIN.
 */
import { access, constants } from 'node:fs/promises';
import { $ } from 'zx';
import { redact } from './secrets.js';

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export async function runTool(cmd: string, args: string[], opts: {
  env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string; cwd?: string;
  /** Sees stderr as it arrives (e.g. to act on a progress line while the tool still runs). */
  onStderr?: (chunk: string) => void;
} = {}): Promise<RunResult> {
  // zx quotes each interpolated argument, so arguments with spaces or shell characters stay one argv entry.
  const p = $({
    env: opts.env ?? process.env, cwd: opts.cwd, input: opts.input ?? '', nothrow: true, quiet: true,
    timeout: opts.timeoutMs ?? 60_000, timeoutSignal: 'SIGKILL',
  })`${cmd} ${args}`;
  if (opts.onStderr) p.stderr.on('data', (d: Buffer) => opts.onStderr!(d.toString()));
  const out = await p;
  return { code: out.exitCode, signal: out.signal, stdout: out.stdout, stderr: out.stderr };
}

/** Run a tool and fail with a one-line message (its last stderr line, redacted) unless it exits 0. */
export async function runToolOk(cmd: string, args: string[], opts: Parameters<typeof runTool>[2] = {}): Promise<RunResult> {
  const r = await runTool(cmd, args, opts);
  if (r.code !== 0) {
    const last = (r.stderr.trim().split('\n').pop() ?? '') || (r.stdout.trim().split('\n').pop() ?? '');
    throw new Error(redact(`${cmd} failed (${r.signal ?? `exit ${r.code}`}): ${last}`));
  }
  return r;
}

/** Kill a process and its group, ignoring processes that are already gone. */
export function killTree(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try { process.kill(-pid, signal); } catch { /* not a group leader or gone */ }
  try { process.kill(pid, signal); } catch { /* gone */ }
}

export async function which(cmd: string): Promise<string | undefined> {
  if (cmd.includes('/')) {
    try { await access(cmd, constants.X_OK); return cmd; } catch { return undefined; }
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = `${dir}/${cmd}`;
    try { await access(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}
