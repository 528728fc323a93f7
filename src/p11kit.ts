/**
 * p11-kit remoting: serve one token of a module over a Unix socket (`p11-kit server -f`) so that the
 * harness (or a container's host) reaches it through p11-kit-client.so. p11-kit(8) "server"; docs/pkcs11-notes.md §8.
 */
import { mkdir, open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { killTree, pidAlive, startServerProcess } from './proc.js';
import { owningPackage } from './fleet/identity.js';

export const P11KIT_CLIENT = process.env.P11KIT_CLIENT_MODULE ?? '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';

/** The transport's name for the reports: "p11-kit 0.24 RPC" (the client module's package version), or "p11-kit RPC". */
export function p11KitRpcName(): string {
  const v = /^(?:\d+:)?(\d+\.\d+)/.exec(owningPackage(P11KIT_CLIENT)?.version ?? '');
  return v ? `p11-kit ${v[1]} RPC` : 'p11-kit RPC';
}

export interface P11KitServer {
  address: string;
  socketPath: string;
  pid: number;
  stop(): Promise<void>;
}

/** A token the server exports: by label, or by label and serial where labels may repeat (a card's PIN slots, two cards). */
export type ServedToken = string | { label: string; serial?: string };

/** The PKCS#11 URI (RFC 7512) of a served token, as p11-kit server matches it. */
export function servedTokenUri(t: ServedToken): string {
  const { label, serial } = typeof t === 'string' ? { label: t, serial: undefined } : t;
  return `pkcs11:token=${encodeURIComponent(label)}${serial ? `;serial=${encodeURIComponent(serial)}` : ''}`;
}

/**
 * Serve the tokens named. Servers started in the same `workDir` share its runtime directory (each socket is
 * named by the server's pid there), so a second one adds nothing to the socket path, which must fit sockaddr_un's
 * 108 bytes; `name` keeps their logs apart.
 */
export async function startP11KitServer(
  provider: string,
  tokens: ServedToken[],
  env: Record<string, string>,
  workDir: string,
  name = 'p11-kit-server',
): Promise<P11KitServer> {
  const runtime = join(workDir, 'runtime');
  await mkdir(runtime, { recursive: true, mode: 0o700 });
  // stderr goes to a file: a pipe would be held open by the server and never reach EOF.
  const errLog = await open(join(workDir, `${name}.log`), 'w');
  const child = startServerProcess('p11-kit', ['server', '-f', '-s', '--provider', provider, ...tokens.map(servedTokenUri)], {
    env: { ...process.env, ...env, XDG_RUNTIME_DIR: runtime },
    stdio: ['ignore', 'pipe', errLog.fd],
  });
  await errLog.close();
  const address = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      killTree(child.pid!);
      reject(new Error('p11-kit server did not print its address within 10 s'));
    }, 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /P11_KIT_SERVER_ADDRESS=([^;\s]+)/.exec(buf);
      if (m && /P11_KIT_SERVER_PID=/.test(buf)) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`p11-kit server exited (${code}) before it was ready; see ${join(workDir, `${name}.log`)}`));
    });
  });
  child.stdout!.resume();
  const socketPath = address.replace(/^unix:path=/, '');
  for (let i = 0; i < 100 && !existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(socketPath)) {
    killTree(child.pid!);
    throw new Error(`p11-kit server socket ${socketPath} did not appear`);
  }
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  const pid = child.pid!;
  return {
    address,
    socketPath,
    pid,
    async stop() {
      killTree(pid, 'SIGTERM');
      for (let i = 0; i < 40; i++) {
        if (!pidAlive(pid)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      killTree(pid, 'SIGKILL');
    },
  };
}
