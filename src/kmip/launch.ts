/**
 * Launching a loopback KMIP server the harness owns: a free port, the server in its own process group (so that
 * its helper processes die with it), readiness by TCP connect, and a stop that does not trust SIGTERM
 * (PyKMIP ignores it for 10 s or more: docs/kmip-profile.md §6).
 */
import { open, readFile } from 'node:fs/promises';
import net from 'node:net';
import { killTree, startServerProcess } from '../proc.js';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function tcpReachable(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export interface LaunchedServer {
  pid: number;
  /** Whether the process is still running. */
  alive(): boolean;
  /** SIGINT to the group, a short grace, then SIGKILL to the group. */
  stop(graceMs?: number): Promise<void>;
}

export async function launchServer(opts: {
  cmd: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  logFile: string;
  host: string;
  port: number;
  readyTimeoutMs?: number;
  what: string;
}): Promise<LaunchedServer> {
  // Output goes to a file: a pipe would be held open by the server's children and never reach EOF.
  const log = await open(opts.logFile, 'a');
  const child = startServerProcess(opts.cmd, opts.args, { env: opts.env ?? process.env, stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  let exited: string | null = null;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', (code, sig) => {
      exited = sig ?? `exit ${code}`;
      resolve();
    }),
  );
  child.once('error', (e) => {
    exited = e.message;
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${opts.what} did not start: ${opts.cmd} could not be run`);
  const server: LaunchedServer = {
    pid,
    alive: () => exited === null,
    async stop(graceMs = 2000) {
      if (exited !== null) {
        killTree(pid, 'SIGKILL');
        return;
      }
      killTree(pid, 'SIGINT');
      await Promise.race([gone, new Promise((r) => setTimeout(r, graceMs))]);
      killTree(pid, 'SIGKILL');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
    },
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  while (Date.now() < deadline) {
    if (exited !== null) break;
    if (await tcpReachable(opts.host, opts.port)) return server;
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.stop(200);
  const tail = (await readFile(opts.logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
  throw new Error(`${opts.what} ${exited !== null ? `exited (${exited})` : 'did not listen'} on ${opts.host}:${opts.port}; log: ${tail}`);
}
