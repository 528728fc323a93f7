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
  // Dies with the worker: a run killed meanwhile must not leave the tool writing to the token while cleanup removes
  // what it made (a PowerDNS key pair, half-written after cleanup had run, stayed unlabelled on the token).
  const r = await runTool(c.cmd, c.args, { env: opts.env ?? job.target.env, cwd: opts.cwd ?? job.workDir, timeoutMs: job.timeoutMs, diesWithParent: true });
  if (r.code !== 0 || r.signal) throw new SignerFailed(stage, `${cmd}: ${lastWords(r)}`, r.code, r.signal);
  return r;
}

/**
 * How long a signer's program may take to say its version. It touches no token; at load 12 on 2 cores
 * `pdns_server --version` took over 10 s, which then read as "not installed".
 */
const PROBE_MS = 60_000;

/** Run a signer's program to learn what it is. One that does not answer in time is not "not installed": that throws. */
export async function probeTool(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  // Dies with the worker too: an orphaned `pdns_server --version` was seen waiting forever.
  const r = await runTool(cmd, args, { env, timeoutMs: PROBE_MS, diesWithParent: true });
  if (r.timedOut)
    throw new Error(`${[cmd, ...args].join(' ')} did not answer within ${PROBE_MS / 1000} s, so the signer was not tried (is the machine overloaded?)`);
  return r;
}

/** The first line of a program's version output, or undefined when it cannot run (throws when it does not answer). */
export async function versionOf(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const r = await probeTool(cmd, args, env);
  if (r.code !== 0) return undefined;
  return (r.stdout.trim() || r.stderr.trim()).split('\n')[0];
}
