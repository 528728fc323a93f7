/**
 * Every child process the harness starts, in one place: tools run to completion (runTool, runToolSync),
 * servers left running (startServerProcess) and the harness's own node children (forkHarness). Errors name
 * the tool and its exit, never the arguments, because arguments may carry a PIN.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { type ChildProcess, type StdioOptions, fork, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { projectRoot } from './paths.js';
import { cleanText, redact, redactBytes } from './secrets.js';
import { heldHere, hold, release } from './ledger.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Killed at its time limit (then `signal` is SIGKILL and stderr ends with the limit). */
  timedOut?: boolean;
}

/** The tools runTool has started in this process and that have not ended yet. */
const running = new Set<ChildProcess>();

/**
 * Kill every tool this process started that still runs, and wait (bounded) until they are gone. A worker whose parent
 * vanished does this before it touches the token: a signer's tool still writing keys would race its clean-up.
 */
export async function killRunningTools(ms = 2_000): Promise<void> {
  const pids = [...running].flatMap((c) => (c.pid ? [c.pid] : []));
  for (const pid of pids) killTree(pid, 'SIGKILL');
  const end = Date.now() + ms;
  while (pids.some(pidAlive) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

export async function runTool(
  cmd: string,
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    input?: string;
    cwd?: string;
    /** Sees stderr as it arrives (e.g. to act on a progress line while the tool still runs). */
    onStderr?: (chunk: string) => void;
    /**
     * Its own process group, killed as a whole at the deadline (debootstrap's chroot'ed helpers, a docker
     * build), and held in the ledger while it runs, so that the group is killed if this process dies first.
     */
    group?: boolean;
    /**
     * Killed by the kernel when this process dies (setpriv --pdeathsig), however it dies: a signer's tool must not
     * go on writing to the token once the worker that started it was killed at a time limit or by cleanup.
     */
    diesWithParent?: boolean;
  } = {},
): Promise<RunResult> {
  // A direct spawn, no shell: arguments reach the tool as they are. Without `group` it stays in the harness's
  // process group, so a Ctrl-C reaches it as well.
  return new Promise((resolve) => {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    // setpriv execs the tool in the same process: the pid, the exit status and 127 for a missing tool stay the tool's.
    const [file, argv] = opts.diesWithParent ? ['setpriv', ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
    const child = spawn(file, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: opts.group === true });
    const held = child.pid && opts.group ? ({ t: 'pid', pid: child.pid, start: processStartTime(child.pid) } as const) : undefined;
    if (held) hold(held);
    running.add(child);
    let stdout = '';
    let stderr = '';
    // Decoded as a stream, so a character split across two chunks stays whole.
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      opts.onStderr?.(d);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stderr += `\n${cmd} did not finish within ${Math.round(timeoutMs / 1000)} s`;
      if (child.pid) killTree(child.pid, 'SIGKILL');
    }, timeoutMs);
    // A tool that exits before reading its input must not turn into an EPIPE error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // As a shell would answer: 127 for a tool that is not there, 126 for one that cannot be run.
      resolve({
        code: err.code === 'ENOENT' ? 127 : 126,
        signal: null,
        stdout,
        stderr: `${cmd}: ${err.code === 'ENOENT' ? 'command not found' : err.message}`,
      });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      if (held) release(held);
      if (opts.diesWithParent && code === 127 && stderr.startsWith('setpriv: failed to execute')) stderr = `${cmd}: command not found`;
      resolve({ code, signal, stdout, stderr, ...(timedOut ? { timedOut } : {}) });
    });
  });
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

/** runTool for the few callers that cannot wait (a package lookup while a report is assembled): stdout, or undefined unless it exits 0. */
export function runToolSync(cmd: string, args: string[], timeoutMs = 10_000): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: timeoutMs });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * A server left running (p11-kit server, pykmip-server, a signer's daemon): its own process group, so killTree stops its helpers
 * too; in the ledger (src/ledger.ts) before this returns, so it cannot outlive the harness unnoticed. Its output goes to
 * `stdio` (a file descriptor rather than a pipe the server's children would hold open).
 */
export function startServerProcess(
  cmd: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; stdio: StdioOptions; cwd?: string; becomes?: string[] },
): ChildProcess {
  const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: opts.stdio, detached: true });
  if (child.pid !== undefined) hold({ t: 'pid', pid: child.pid, start: processStartTime(child.pid), ...(opts.becomes ? { becomes: opts.becomes } : {}) });
  return child;
}

/**
 * One of the harness's own node programs (the runner's worker, the clean-up worker, the container probe) in a
 * child process with a JSON IPC channel. `module` is its path below src/, compiled: from dist/ when this file
 * runs from source (tests under vitest), beside this file when it runs built.
 */
export function forkHarness(module: string, opts: { env: NodeJS.ProcessEnv; output: 'pipe' | 'ignore' }): ChildProcess {
  const here = fileURLToPath(import.meta.url);
  const path = here.endsWith('.js') ? join(here, '..', module) : join(projectRoot(), 'dist', 'src', module);
  if (!existsSync(path)) throw new Error('dist/ is missing: run npm run build first');
  return fork(path, [], { env: opts.env, stdio: ['ignore', opts.output, opts.output, 'ipc'], serialization: 'json' });
}

/** Whether a process with this pid exists (one that belongs to another user counts). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a pid is a live harness run (a lock's or a staged directory's owner): a recycled pid belongs to some other program, so only a node process counts. */
export function harnessRunAlive(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('node');
  } catch {
    return true;
  }
}

/** Kill a process and its group, ignoring processes that are already gone. */
export function killTree(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* not a group leader or gone */
  }
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

export async function which(cmd: string): Promise<string | undefined> {
  if (cmd.includes('/')) {
    try {
      await access(cmd, constants.X_OK);
      return cmd;
    } catch {
      return undefined;
    }
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = `${dir}/${cmd}`;
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * The start time of a process (field 22 of /proc/<pid>/stat, in clock ticks since boot), or undefined when it
 * is gone. A pid plus its start time names one process: a recycled pid has another start time, so a cleanup
 * that checks it never kills a stranger.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after its closing ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** A process's command line as /proc shows it (arguments joined by NUL), or undefined when it is gone. */
export function processCmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return undefined;
  }
}

/**
 * Whether pid still names the recorded process: same start time and, when one was recorded, the same
 * command line (a journal is a file anyone can write: a start time alone can be copied from /proc).
 */
export function sameProcessAlive(pid: number, start: string | undefined, cmdline?: string): boolean {
  if (start === undefined || processStartTime(pid) !== start) return false;
  return cmdline === undefined || processCmdline(pid) === cmdline;
}

/** Kill a process (and its group) only if it is still the one that was recorded. */
export function killIfSame(pid: number, start: string | undefined, cmdline?: string): boolean {
  if (!sameProcessAlive(pid, start, cmdline)) return false;
  killTree(pid, 'SIGKILL');
  return true;
}

/** Last resort when this process must stop at once: kill what it started and remove its directories (src/ledger.ts). */
export function releaseAllHeld(): void {
  // A directory holding a signer's record of the keys it made stays: `hsm-harness cleanup` reads the record to find
  // those keys (a worker orphaned by a kill of its parent alone removed it, and Knot's key stayed on the card).
  const records = heldHere().flatMap((h) => (h.t === 'signer-keys' ? [h.dir] : []));
  for (const h of heldHere()) {
    if (h.t === 'pid') killIfSame(h.pid, h.start);
    if (h.t !== 'dir') continue;
    if (records.some((r) => r === h.path || r.startsWith(`${h.path}/`))) continue;
    try {
      rmSync(h.path, { recursive: true, force: true });
    } catch {
      /* leave it */
    }
  }
}

/**
 * The last line a child wrote to stderr, for a crash record. A module may write a PIN a byte at a time, so
 * bytes are kept per line and a line is decoded and masked only once it is whole (redactBytes); the
 * result is cut to length only after masking. A line longer than MAX_LINE_BYTES is not kept at all: cutting
 * it would cut a secret inside it, and its rest would escape the mask.
 */
export class StderrTail {
  static readonly MAX_LINE_BYTES = 64 * 1024;
  private last: Buffer | 'overlong' | undefined;
  private current: Buffer[] = [];
  private currentBytes = 0;
  private overlong = false;

  push(chunk: Buffer): void {
    let from = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
      this.add(chunk.subarray(from, nl));
      this.endLine();
      from = nl + 1;
    }
    this.add(chunk.subarray(from));
  }

  /** The last non-empty line: masked, control characters escaped, then cut to maxChars. */
  lastLine(maxChars = 500): string {
    const pending = this.overlong ? 'overlong' : this.currentBytes ? Buffer.concat(this.current) : undefined;
    const line = pending !== undefined && (pending === 'overlong' || pending.toString('latin1').trim()) ? pending : this.last;
    if (line === undefined) return '';
    if (line === 'overlong') return `(a line of more than ${StderrTail.MAX_LINE_BYTES / 1024} KiB, not shown)`;
    const text = cleanText(redactBytes(line).trim(), true);
    return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
  }

  private add(part: Buffer): void {
    if (this.overlong || part.length === 0) return;
    this.currentBytes += part.length;
    if (this.currentBytes > StderrTail.MAX_LINE_BYTES) {
      this.overlong = true;
      this.current = [];
    } else this.current.push(Buffer.from(part));
  }

  private endLine(): void {
    if (this.overlong) this.last = 'overlong';
    else if (this.currentBytes && Buffer.concat(this.current).toString('latin1').trim()) this.last = Buffer.concat(this.current);
    this.current = [];
    this.currentBytes = 0;
    this.overlong = false;
  }
}
