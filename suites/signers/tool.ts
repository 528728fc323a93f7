/**
 * Running one of a signer's programs for a signer file: isolated (SignerTarget.isolate), bounded, and turned
 * into a SignerFailed with the program's own last words, exit code or signal when it does not exit 0.
 */
import { runTool, type RunResult } from '../../src/proc.js';
import { redact } from '../../src/secrets.js';
import { SignerFailed, type SignJob } from './signer.js';

/** The last non-empty lines a program wrote (stderr first), PIN removed. */
export function lastWords(r: RunResult, lines = 2): string {
  const text = (r.stderr.trim() || r.stdout.trim()).split('\n').filter((l) => l.trim());
  // A usage text after the error (ldns-signzone lists its algorithms) would hide it: prefer the lines that say what went wrong.
  const errors = text.filter((l) => /error|cannot|can't|fail|abort|invalid|unsupported|not supported/i.test(l));
  return redact((errors.length ? errors : text).slice(-lines).join(' | ')) || '(no output)';
}

export async function runSignerTool(
  job: SignJob,
  stage: string,
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  const c = job.target.isolate(cmd, args);
  const r = await runTool(c.cmd, c.args, { env: opts.env ?? job.target.env, cwd: opts.cwd ?? job.workDir, timeoutMs: job.timeoutMs });
  if (r.code !== 0 || r.signal) throw new SignerFailed(stage, `${cmd}: ${lastWords(r)}`, r.code, r.signal);
  return r;
}

/** The first line of a program's version output, or undefined when it cannot run. */
export async function versionOf(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const r = await runTool(cmd, args, { env, timeoutMs: 10_000 });
  if (r.code !== 0) return undefined;
  return (r.stdout.trim() || r.stderr.trim()).split('\n')[0];
}
