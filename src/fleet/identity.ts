/**
 * The identity of what a run tested, recorded in results.json so that runs from CI and from every lab can be
 * merged (hsm-harness merge) and compared (hsm-harness diff): the module and its version, the token's
 * manufacturer, model, serial and firmware, the Debian packages behind them (OpenSC, p11-kit, SoftHSM,
 * PyKMIP …), the harness's version and commit, the machine and the runner's labels.
 *
 * Token serials identify one physical device, and a lab may not want that published: they are replaced by a
 * keyed hash everywhere in the driver's report unless HSM_PUBLISH_SERIALS=1. The hash is stable, so runs of
 * the same device still line up.
 */
import { runToolSync } from '../proc.js';
import { createHash } from 'node:crypto';
import { readdirSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cpus, hostname, release, type } from 'node:os';
import type { DriverIdentity, DriverReport, PackageVersion, RunIdentity } from '../results.js';
import { projectRoot, toolVersion } from '../paths.js';
import type { Token } from '../pkcs11/token.js';
import { trimPadded } from '../pkcs11/module.js';

export const PUBLISH_SERIALS_ENV = 'HSM_PUBLISH_SERIALS';

const version = (v: { major: number; minor: number }) => `${v.major}.${v.minor}`;

/** Read in the driver's own process, right after login: independent of which suites run. */
export function pkcs11Identity(modulePath: string, token: Token): DriverIdentity {
  const lib = token.lib.C_GetInfo();
  const t = token.tokenInfo();
  const manufacturer = trimPadded(t.manufacturerID);
  const model = trimPadded(t.model);
  return {
    product: [manufacturer, model].filter(Boolean).join(' ') || trimPadded(t.label),
    firmware: version(t.firmwareVersion),
    hardware: version(t.hardwareVersion),
    module: {
      path: modulePath,
      manufacturer: trimPadded(lib.manufacturerID),
      description: trimPadded(lib.libraryDescription),
      version: version(lib.libraryVersion),
      cryptokiVersion: version(lib.cryptokiVersion),
    },
    token: { manufacturer, model, label: trimPadded(t.label), serial: trimPadded(t.serialNumber), serialHashed: false },
  };
}

/**
 * Completed in the parent once the driver's process has ended: the packages that own the files involved,
 * the server identity of a non-PKCS#11 target, and the serial hashed (everywhere in the report) unless the
 * user opted in.
 */
export function completeIdentity(report: DriverReport, env: NodeJS.ProcessEnv): void {
  if (!report.available) return;
  const info = report.info;
  const str = (k: string) => (typeof info[k] === 'string' && info[k] ? String(info[k]) : undefined);
  let id = report.identity;
  if (!id) {
    // Not a PKCS#11 token (or it never opened): name the server the driver reached. The product name is the
    // driver's own (not the KMIP Query answer, which only the kmip suite asks), so every run names it alike.
    const product = str('server') ?? report.title;
    id = { product, server: { product } };
    if (str('kmipVendor')) id.server!.vendor = str('kmipVendor');
    if (str('executable')) id.server!.executable = str('executable');
  }
  if (id.module) withPackage(id.module, id.module.path);
  const provider = str('provider');
  if (provider) id.provider = withPackage<NonNullable<DriverIdentity['provider']>>({ path: provider }, provider);
  if (id.server?.executable) withPackage(id.server, id.server.executable);
  if (!id.firmware && id.server?.package) id.firmware = id.server.package.version;
  report.identity = id;
  if (id.token && !id.token.serialHashed && env[PUBLISH_SERIALS_ENV] !== '1') hashSerial(report, id.token);
}

function withPackage<T extends { package?: PackageVersion }>(target: T, path: string): T {
  const pkg = owningPackage(path);
  if (pkg) target.package = pkg;
  return target;
}

const DPKG_INFO = '/var/lib/dpkg/info';
const owners = new Map<string, PackageVersion | null>();

/**
 * The Debian package that installed a file, and its version; undefined off Debian or for files dpkg does not
 * know. The file lists are searched with grep rather than `dpkg -S`, which takes seconds on a busy machine.
 */
export function owningPackage(path: string): PackageVersion | undefined {
  const cached = owners.get(path);
  if (cached !== undefined) return cached ?? undefined;
  const candidates = [path];
  try {
    candidates.push(realpathSync(path));
  } catch {
    /* not there: dpkg will not know it either */
  }
  let lists: string[] = [];
  try {
    lists = readdirSync(DPKG_INFO)
      .filter((f) => f.endsWith('.list'))
      .map((f) => join(DPKG_INFO, f));
  } catch {
    /* not Debian */
  }
  let found: PackageVersion | undefined;
  if (lists.length) {
    const hits =
      runToolSync('grep', ['-lxF', ...candidates.flatMap((c) => ['-e', c]), ...lists])
        ?.split('\n')
        .filter(Boolean) ?? [];
    const name = hits.map((f) => basename(f, '.list').replace(/:[\w-]+$/, ''))[0];
    const version = name ? runToolSync('dpkg-query', ['-W', '-f=${Version}', name]) : undefined;
    if (name && version) found = { name, version };
  }
  owners.set(path, found ?? null);
  return found;
}

/** sha256 over manufacturer, model and serial, so equal serials of different products do not collide. */
export function serialHash(manufacturer: string, model: string, serial: string): string {
  return `sha256:${createHash('sha256').update(`hsm-harness token serial\0${manufacturer}\0${model}\0${serial}`).digest('hex').slice(0, 16)}`;
}

/** Serials hashed in this process, so that run-level text (leftovers from the journal) can be hashed alike. */
const hashedSerials: { re: RegExp; hashed: string }[] = [];

function replaceSerials<T>(value: T): T {
  if (hashedSerials.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return hashedSerials.reduce((s, { re, hashed }) => s.replace(re, hashed), v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/** Every serial hashed so far, hashed in `value` too (the run's leftovers name tokens by serial). */
export function hashKnownSerials<T>(value: T): T {
  return replaceSerials(value);
}

function hashSerial(report: DriverReport, token: NonNullable<DriverIdentity['token']>): void {
  const raw = token.serial;
  const hashed = serialHash(token.manufacturer, token.model, raw);
  token.serial = hashed;
  token.serialHashed = true;
  // An empty serial identifies nothing; very short ones would also match unrelated numbers in the report.
  if (raw.length < 4) return;
  hashedSerials.push({ re: new RegExp(`(?<![A-Za-z0-9])${raw.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9])`, 'g'), hashed });
  const { identity, ...rest } = report;
  Object.assign(report, replaceSerials(rest), { identity });
}

/** The run's side: harness source, machine, runner. */
export function runIdentity(env: NodeJS.ProcessEnv): RunIdentity {
  const harness: RunIdentity['harness'] = { version: toolVersion() };
  const commit = env.GITHUB_SHA || runToolSync('git', ['-C', projectRoot(), 'rev-parse', 'HEAD']);
  if (commit && /^[0-9a-f]{40}$/.test(commit)) {
    harness.commit = commit;
    // Only the checkout we run from can say whether it has local changes.
    if (!env.GITHUB_SHA) {
      const status = runToolSync('git', ['-C', projectRoot(), 'status', '--porcelain', '--untracked-files=no']);
      if (status !== undefined) harness.dirty = status.length > 0;
    }
  }
  const cpu = cpus();
  const runner: RunIdentity['runner'] = {
    labels: (env.HSM_RUNNER_LABELS ?? '')
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean),
  };
  if (env.RUNNER_NAME) runner.name = env.RUNNER_NAME;
  if (env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID) {
    runner.runUrl = `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`;
  }
  return {
    harness,
    machine: { hostname: hostname(), os: `${type()} ${release()}`, arch: process.arch, cpus: cpu.length, cpuModel: cpu[0]?.model.trim() ?? '' },
    runner,
  };
}
