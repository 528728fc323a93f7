/**
 * The project's container images: where their definitions are (containers/<name>), whether an image can be
 * had on this engine (local, pullable, or why not), building one with the build's own error message, and
 * the Debian base image built from the machine's Debian mirror when no registry answers (air-gapped labs).
 * Every answer about an image is asked once per process and cached: a run asks the engine, not each driver.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { projectRoot } from '../paths.js';
import { makeTempDir } from '../fsutil.js';
import { docker, HARNESS_LABEL, lastLine } from './docker.js';
import { runTool, which } from '../proc.js';

export function containerDir(name: string): string {
  return join(projectRoot(), 'containers', name);
}

/**
 * The image a FROM-only Dockerfile names (containers/nethsm/Dockerfile), so that a dependency bot bumps one
 * line and the driver follows. A floating tag (`latest`, `testing`) is refused.
 */
export function pinnedImage(name: string): string {
  const text = readFileSync(join(containerDir(name), 'Dockerfile'), 'utf8');
  const from = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^FROM\s/i.test(l));
  const image = from?.split(/\s+/)[1];
  if (!image || !/:[^/]+$/.test(image)) throw new Error(`containers/${name}/Dockerfile must be "FROM image:tag"`);
  const tag = image.slice(image.lastIndexOf(':') + 1);
  if (FLOATING_TAGS.has(tag)) throw new Error(`containers/${name}/Dockerfile uses the floating tag "${tag}"; pin a commit-hash tag`);
  return image;
}

export const FLOATING_TAGS = new Set(['latest', 'testing', 'main', 'master', 'edge', 'nightly']);

/** The registry's Debian image containers/softhsm starts from (its BASE_IMAGE build argument's default). */
export const REGISTRY_BASE_IMAGE = 'debian:bookworm-slim';
/** The same release built on this machine from its Debian mirror (debootstrap + docker import). */
export const LOCAL_BASE_IMAGE = 'hsm-harness-base:bookworm';
const BASE_SUITE = 'bookworm';

/** A local image name that changes when the build context does, so a stale image is never reused. */
export function localImageName(name: string, files: string[], extra = ''): string {
  const h = createHash('sha256');
  for (const f of files) h.update(readFileSync(join(containerDir(name), f)));
  h.update(extra);
  return `hsm-harness-${name}:${h.digest('hex').slice(0, 12)}`;
}

export interface ImageState {
  /** local: in the engine; pullable: a registry answers for it; unavailable: neither (detail says why). */
  state: 'local' | 'pullable' | 'unavailable';
  detail: string;
}

const states = new Map<string, Promise<ImageState>>();

/**
 * Is the image in the engine, and if not, would a pull work? `docker manifest inspect` asks the registry for
 * the manifest only (cheap, nothing is downloaded); its error is the real reason (DNS, proxy, auth, no such tag).
 */
export function imageState(image: string, env: NodeJS.ProcessEnv, askRegistry = true): Promise<ImageState> {
  const key = `${image} ${askRegistry}`;
  let p = states.get(key);
  if (!p) {
    p = (async (): Promise<ImageState> => {
      const local = await docker(['image', 'inspect', '--format', '{{.Id}}', image], env, { timeoutMs: 60_000 });
      if (local.code === 0) return { state: 'local', detail: `${image} is in the engine` };
      if (!askRegistry) return { state: 'unavailable', detail: `${image} is not in the engine` };
      const remote = await docker(['manifest', 'inspect', image], env, { timeoutMs: 30_000 });
      if (remote.code === 0) return { state: 'pullable', detail: `${image} can be pulled` };
      return {
        state: 'unavailable',
        detail: `${image} is not in the engine and cannot be pulled: ${lastLine(remote.stderr) || `docker manifest inspect exited ${remote.code}`}`,
      };
    })();
    states.set(key, p);
  }
  return p;
}

/** Forget cached answers about an image (after this process built or pulled it). */
function forget(image: string): void {
  for (const k of [...states.keys()]) if (k.startsWith(`${image} `)) states.delete(k);
}

/** The first `deb` mirror for Debian main in the machine's apt sources (one-line or deb822 format). */
export function debianMirror(env: NodeJS.ProcessEnv): string | undefined {
  if (env.HSM_DEBIAN_MIRROR) return env.HSM_DEBIAN_MIRROR;
  const files = [
    '/etc/apt/sources.list',
    ...(existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d').map((f) => `/etc/apt/sources.list.d/${f}`) : []),
  ];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+.*\bmain\b/.exec(line.trim());
      if (m && !/security/.test(m[1]!)) return m[1];
    }
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      if (/^Types:.*\bdeb\b/m.test(stanza) && /^Components:.*\bmain\b/m.test(stanza) && uri && !/security/.test(uri)) return uri;
    }
  }
  return undefined;
}

/** Why the base image cannot be built here with debootstrap, or undefined when it can. */
export async function debootstrapUnavailable(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (!(await which('debootstrap'))) return 'debootstrap is not installed (apt-get install debootstrap)';
  if (process.getuid?.() !== 0) return 'debootstrap needs root';
  if (!debianMirror(env)) return 'no Debian mirror in /etc/apt/sources.list* (set HSM_DEBIAN_MIRROR)';
  return undefined;
}

export type BasePlan = { ok: true; image: string; build: boolean; how: string } | { ok: false; reason: string };

/**
 * Which Debian base containers/softhsm starts from, in this order: one already in the engine (the registry's,
 * then ours), the registry's if it can be pulled, else ours built now from the Debian mirror.
 */
export async function basePlan(env: NodeJS.ProcessEnv): Promise<BasePlan> {
  const registry = await imageState(REGISTRY_BASE_IMAGE, env, false);
  if (registry.state === 'local') return { ok: true, image: REGISTRY_BASE_IMAGE, build: false, how: `base ${REGISTRY_BASE_IMAGE} (in the engine)` };
  const ours = await imageState(LOCAL_BASE_IMAGE, env, false);
  if (ours.state === 'local')
    return { ok: true, image: LOCAL_BASE_IMAGE, build: false, how: `base ${LOCAL_BASE_IMAGE} (built earlier from the Debian mirror)` };
  const pull = await imageState(REGISTRY_BASE_IMAGE, env, true);
  if (pull.state === 'pullable') return { ok: true, image: REGISTRY_BASE_IMAGE, build: false, how: `base ${REGISTRY_BASE_IMAGE} (pulled)` };
  const cannot = await debootstrapUnavailable(env);
  if (cannot) {
    return {
      ok: false,
      reason: `no base image: ${pull.detail}; and it cannot be built from the Debian mirror here: ${cannot}. Build it where it can: hsm-harness images build`,
    };
  }
  return {
    ok: true,
    image: LOCAL_BASE_IMAGE,
    build: true,
    how: `base ${LOCAL_BASE_IMAGE} to be built from ${debianMirror(env)} with debootstrap, since no registry answers (${pull.detail}); about a minute, once per engine (pre-build: hsm-harness images build)`,
  };
}

/**
 * A tool in its own process group (debootstrap runs chroot'ed helpers), held in the ledger while it runs so a
 * killed driver process leaves neither a build nor a chroot behind; its output's last lines, stderr last.
 */
async function run(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<{ code: number | null; output: string }> {
  const r = await runTool(cmd, args, { env: opts.env, timeoutMs: opts.timeoutMs, group: true });
  return { code: r.code, output: `${r.stdout.slice(-10_000)}\n${r.stderr.slice(-10_000)}` };
}

/**
 * Build LOCAL_BASE_IMAGE: `debootstrap --variant=minbase bookworm` from the machine's Debian mirror, then
 * `docker import`. The image's apt sources point at that mirror, so the images built on it install from it.
 */
export async function buildBaseImage(env: NodeJS.ProcessEnv, say: (line: string) => void = () => undefined): Promise<string> {
  const cannot = await debootstrapUnavailable(env);
  if (cannot) throw new Error(`cannot build ${LOCAL_BASE_IMAGE}: ${cannot}`);
  const mirror = debianMirror(env)!;
  const dir = await makeTempDir('base-image');
  try {
    const root = join(dir.path, 'root');
    say(`building ${LOCAL_BASE_IMAGE}: debootstrap --variant=minbase ${BASE_SUITE} from ${mirror} (about a minute)`);
    const boot = await run('debootstrap', ['--variant=minbase', BASE_SUITE, root, mirror], { env, timeoutMs: 900_000 });
    if (boot.code !== 0) throw new Error(`debootstrap from ${mirror} failed: ${lastLine(boot.output)}`);
    say(`importing ${LOCAL_BASE_IMAGE} into the engine`);
    const imported = await run(
      'sh',
      ['-c', 'tar -C "$1" -c . | docker import --change \'CMD ["/bin/bash"]\' --change "LABEL $2=base" - "$3"', 'sh', root, HARNESS_LABEL, LOCAL_BASE_IMAGE],
      { env, timeoutMs: 600_000 },
    );
    if (imported.code !== 0) throw new Error(`docker import of ${LOCAL_BASE_IMAGE} failed: ${lastLine(imported.output)}`);
    forget(LOCAL_BASE_IMAGE);
    return LOCAL_BASE_IMAGE;
  } finally {
    await dir.remove();
  }
}

/**
 * The reason a classic `docker build` failed, from its output: the failing step's last error-looking line
 * (e.g. curl's "Could not resolve host: …") and the engine's summary ("returned a non-zero code: 6").
 */
export function buildFailureReason(stdout: string, stderr: string): string {
  const noise =
    /^(Step \d+\/\d+ :|---> |Removing intermediate container|Sending build context|Successfully|debconf: |\(Reading database|Selecting previously|Preparing to unpack|Unpacking |Setting up |Processing triggers|Get:\d+|Hit:\d+|Fetched |Reading package lists|Building dependency tree|Reading state information)/;
  const lines = stdout
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !noise.test(l));
  const errorish = lines.filter((l) => /error|fail|could not|couldn't|unable|not found|denied|no such|E: |refused|timed out/i.test(l));
  const cause = errorish.pop() ?? lines.pop() ?? '';
  const summary = lastLine(stderr.replace(/\x1b\[[0-9;]*m/g, '')).replace(/^The command '.*' returned/, 'the step returned');
  return [cause, summary].filter(Boolean).join('; ') || 'docker build failed without output';
}

/**
 * Build containers/<name> unless an image of the same content is already in the engine, and return its
 * name. Built with the docker CLI: --force-rm so a failed step leaves no container behind, and the build's
 * own error in the exception.
 */
export async function buildImage(
  name: string,
  files: string[],
  buildArgs: Record<string, string>,
  env: NodeJS.ProcessEnv,
  say: (line: string) => void = () => undefined,
): Promise<string> {
  const image = localImageName(name, files, JSON.stringify(buildArgs));
  if ((await imageState(image, env, false)).state === 'local') return image;
  say(`building ${image} from containers/${name}`);
  const args = [
    'build',
    '--force-rm',
    '--label',
    `${HARNESS_LABEL}=${name}`,
    '--tag',
    image,
    ...Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
    containerDir(name),
  ];
  const r = await docker(args, { ...env, DOCKER_BUILDKIT: '0' }, { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`containers/${name} did not build: ${buildFailureReason(r.stdout, r.stderr)}`);
  forget(image);
  return image;
}
