/**
 * A signer's daemon (pdns_server, ods-enforcerd, ods-signerd) for the length of one sign(): started isolated
 * (SignerTarget.isolate) in a process group of its own, registered with the run's journal (startServerProcess) before
 * anything waits on it, its output in a file in the job's directory, killed with its whole group by stop() and
 * at the latest when the job's time is up. Nothing of it outlives the case.
 */
import { open, readFile } from 'node:fs/promises';
import { type AddressInfo, createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { killTree, startServerProcess } from '../../src/proc.js';
import { release } from '../../src/ledger.js';
import { redact } from '../../src/secrets.js';
import { SignerFailed, type SignJob } from './signer.js';

export interface Daemon {
  name: string;
  pid: number;
  /** How it ended, once it has (undefined while it runs). */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Its output so far, PIN removed. */
  log(): Promise<string>;
  /** Its last lines of output, PIN removed. */
  lastWords(lines?: number): Promise<string>;
  /** Resolves when it has ended or `ms` have passed, whichever comes first. */
  ended(ms: number): Promise<void>;
  /** SIGTERM to its group, SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** `runs` is the daemon's own command line when `cmd` is a launcher that execs into it (OpenDNSSEC's private mounts). */
export async function startDaemon(
  job: SignJob,
  name: string,
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  runs: string[] = [cmd, ...args],
): Promise<Daemon> {
  const logPath = join(job.workDir, `${name}.log`);
  // A file, not a pipe: a daemon that forks would hold a pipe open after the process we wait for has gone.
  // Truncated: a second call in the same job must not read the first one's errors.
  const out = await open(logPath, 'w');
  const c = job.target.isolate(cmd, args);
  // Journalled with the command line it ends up as: the launcher (unshare, sh) execs into the daemon, and a later
  // cleanup kills a journalled process only when its command line is one the harness recorded.
  const child = startServerProcess(c.cmd, c.args, { env, cwd: job.workDir, stdio: ['ignore', out.fd, out.fd], becomes: runs });
  await out.close();
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new SignerFailed('start daemon', `${cmd}: ${err.message}`, 127);
  }
  const pid = child.pid;
  let ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      ended = { code, signal };
      resolve();
    }),
  );
  const deadline = setTimeout(() => killTree(pid, 'SIGKILL'), job.timeoutMs);
  deadline.unref();
  const log = async () => redact(await readFile(logPath, 'utf8').catch(() => ''));
  return {
    name,
    pid,
    log,
    exit: () => ended,
    ended: (ms) => Promise.race([gone, new Promise<void>((r) => setTimeout(r, ms).unref())]),
    async lastWords(lines = 2) {
      // Backtrace frames ("lib.so(+0x891f5) [0x7f…]") say nothing to a reader: the line before them does.
      // A syslog-style time stamp ("Dec 07 15:35:15 ") would make the same failure read differently every run.
      const text = (await log())
        .split('\n')
        .filter((l) => l.trim() && !/\[0x[0-9a-f]+\]\s*$/.test(l))
        .map((l) => l.replace(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d /, ''));
      return text.slice(-lines).join(' | ') || '(no output)';
    },
    async stop(graceMs = 5_000) {
      clearTimeout(deadline);
      if (!ended) {
        killTree(pid, 'SIGTERM');
        const timer = setTimeout(() => killTree(pid, 'SIGKILL'), graceMs);
        await gone;
        clearTimeout(timer);
      }
      // Whatever it forked is in its group: make sure none of it stays.
      killTree(pid, 'SIGKILL');
      release({ t: 'pid', pid });
    },
  };
}

/**
 * Wait until `ready()` is true, polling. Fails as `stage` with the daemon's own words when it exits first, when a
 * line of its output matches `failOn` (a daemon that logs an error and carries on), or when `ms` pass.
 */
export async function waitUntil(
  daemon: Daemon,
  what: string,
  ready: () => Promise<boolean>,
  opts: { ms: number; stage?: string; failOn?: RegExp },
): Promise<void> {
  const stage = opts.stage ?? 'start daemon';
  const end = Date.now() + opts.ms;
  while (Date.now() < end) {
    if (await ready()) return;
    const exit = daemon.exit();
    if (exit) throw new SignerFailed(stage, `${what}: ${daemon.name} ended: ${await daemon.lastWords()}`, exit.code, exit.signal);
    const failed = opts.failOn && (await daemon.log()).split('\n').find((l) => opts.failOn!.test(l));
    if (failed) throw new SignerFailed(stage, `${what}: ${daemon.name}: ${failed.trim()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new SignerFailed(stage, `${what}: not within ${Math.round(opts.ms / 1000)} s: ${daemon.name}: ${await daemon.lastWords()}`);
}

/** Does something accept TCP connections on 127.0.0.1:port? */
export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice), for a daemon to bind. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}
