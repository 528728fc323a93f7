/**
 * A signer must see only the token under test. Knot (GnuTLS) and PowerDNS load every module registered with
 * p11-kit, and as root p11-kit reads only the system registration (/usr/share/p11-kit/modules,
 * /etc/pkcs11/modules): a registered opensc-pkcs11 with a running pcscd costs seconds and touches a card. So
 * each signer process runs in a private mount namespace (unshare -m; unshare -Urm when not root) where both
 * directories are replaced by one that registers only the module under test, as `hsm-harness-token`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../proc.js';

/** The p11-kit name of the only module a signer sees (PowerDNS selects modules by this name). */
export const ISOLATED_MODULE_NAME = 'hsm-harness-token';
const REGISTRIES = ['/usr/share/p11-kit/modules', '/etc/pkcs11/modules'];

export interface Isolation {
  /** The command line that runs cmd inside the private namespace. */
  wrap(cmd: string, args: string[]): { cmd: string; args: string[] };
  /** How it isolates, or why it cannot (then wrap runs the command as it is). */
  how: string;
  isolated: boolean;
}

/** Prepare the private registry in `dir` and check that a namespace can be made here. */
export async function isolation(dir: string, modulePath: string): Promise<Isolation> {
  const registry = join(dir, `p11-kit-modules-${modulePath.replace(/\W+/g, '_')}`);
  await mkdir(registry, { recursive: true, mode: 0o700 });
  await writeFile(join(registry, `${ISOLATED_MODULE_NAME}.module`), `module: ${modulePath}\n`);
  const asRoot = process.getuid?.() === 0;
  const unshare = asRoot ? ['-m', '--propagation', 'private'] : ['-Urm', '--propagation', 'private'];
  // Bind the private registry over each system one that exists; /etc/pkcs11/modules may be absent.
  const script = `for d in ${REGISTRIES.join(' ')}; do [ -d "$d" ] && mount --bind "$REGISTRY" "$d"; done; exec "$@"`;
  const wrap = (cmd: string, args: string[]) => ({
    cmd: 'env',
    args: [`REGISTRY=${registry}`, 'unshare', ...unshare, '--', 'sh', '-c', script, 'sh', cmd, ...args],
  });
  const probe = wrap('true', []);
  const r = await runTool(probe.cmd, probe.args, { timeoutMs: 10_000 });
  if (r.code !== 0) {
    const why = (r.stderr.trim().split('\n').pop() ?? '') || `exit ${r.code}`;
    return {
      wrap: (cmd, args) => ({ cmd, args }),
      how: `not isolated: unshare failed (${why}); the signer sees every module p11-kit registers`,
      isolated: false,
    };
  }
  return { wrap, how: `private mount namespace (unshare ${unshare.join(' ')}): p11-kit registers only ${ISOLATED_MODULE_NAME}`, isolated: true };
}

/** The modules p11-kit loads for a process started through `iso` (p11-kit list-modules), for the record. */
export async function visibleModules(iso: Isolation, env: NodeJS.ProcessEnv): Promise<string[]> {
  const c = iso.wrap('p11-kit', ['list-modules']);
  const r = await runTool(c.cmd, c.args, { env, timeoutMs: 20_000 });
  return r.stdout
    .split('\n')
    .map((l) => /^(\S+): \S+$/.exec(l)?.[1])
    .filter((m): m is string => m !== undefined);
}
