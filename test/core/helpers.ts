/** Shared helpers for the harness's own tests: run the built CLI, make throwaway SoftHSM tokens. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'vitest';
import { loadDrivers } from '../../src/registry.js';
import { SoftHsmStore } from '../../src/softhsm.js';
import { RESULTS_SCHEMA_VERSION, summarise, type DriverReport, type RunResults } from '../../src/results.js';

const exec = promisify(execFile);
export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
/** Headless Chromium for the report tests: the Debian package (scripts/setup.mjs installs it), no network. */
export const CHROMIUM = '/usr/bin/chromium';
export const NO_CHROMIUM = `${CHROMIUM} is missing: install the Debian chromium package (node scripts/setup.mjs does)`;
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** A whole RunResults around hand-built driver reports, for the tests of renderers and of the status model. */
export function runResultsOf(drivers: DriverReport[], overrides: Partial<RunResults> = {}): RunResults {
  return {
    schemaVersion: RESULTS_SCHEMA_VERSION,
    tool: { name: 'hsm-harness', version: '0' },
    startedAt: '2026-01-01T00:00:00Z',
    finishedAt: '2026-01-01T00:00:01Z',
    environment: { node: 'v20', platform: 'linux', arch: 'x64', hostname: 'h', ci: false },
    identity: {
      harness: { version: '0' },
      machine: { hostname: 'h', os: 'linux', arch: 'x64', cpus: 1, cpuModel: 'test' },
      runner: { labels: [] },
    },
    drivers,
    summary: summarise(drivers),
    ...overrides,
  };
}
/**
 * Drivers configured in the developer's own environment must not leak into tests: the variables every driver
 * declares it reads (a trailing * covers a family), plus the harness's own HSM_* switches.
 */
export async function driverVariables(): Promise<(name: string) => boolean> {
  const declared = (await loadDrivers()).flatMap((d) => d.envVars);
  const exact = new Set(declared.filter((v) => !v.endsWith('*')));
  const prefixes = ['HSM_', ...declared.filter((v) => v.endsWith('*')).map((v) => v.slice(0, -1))];
  return (name) => exact.has(name) || prefixes.some((p) => name.startsWith(p));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `hsm-harness …` from the build (or another build's cli.js); never throws on a non-zero exit. */
export async function cli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { cwd?: string; timeoutMs?: number; cli?: string } = {}): Promise<CliResult> {
  const clean: NodeJS.ProcessEnv = { ...process.env };
  const strip = await driverVariables();
  for (const k of Object.keys(clean)) if (strip(k)) delete clean[k];
  try {
    const r = await exec('node', [opts.cli ?? CLI, ...args], {
      env: { ...clean, ...env },
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? 300_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** A SoftHSM token made with softhsm2-util directly (independently of the harness's own store code). */
export async function makeSoftHsmToken(label: string, pin: string): Promise<{ conf: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hh-test-softhsm-'));
  await mkdir(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  await exec('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', `${pin}-so`], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
  });
  return { conf, dir };
}

/**
 * Skip the running test with its reason in the JUnit XML too: vitest's JUnit reporter writes a bare
 * <skipped/>, but it does write annotations, so the reason goes in as a "skip-reason" property.
 */
export async function skipWithReason(ctx: TestContext, reason: string): Promise<never> {
  await ctx.annotate(reason, 'skip-reason');
  return ctx.skip(reason);
}

/** Compile a C module from fixtures/ (a fault-injecting shim or fake module) into dir; returns the .so path. */
/**
 * A fault-injecting shim (a fixtures/ C file, built here) in front of a new SoftHSM token, set up for the
 * generic pkcs11 driver: the environment a run needs, and the store to remove afterwards.
 */
export async function shimOverSoftHsm(
  fixture: string,
  dir: string,
  label: string,
  shimEnv: NodeJS.ProcessEnv = {},
): Promise<{ store: SoftHsmStore; env: NodeJS.ProcessEnv }> {
  const shim = await buildFixtureModule(fixture, dir);
  const store = await SoftHsmStore.create();
  const token = await store.addToken(label);
  const env = {
    ...process.env,
    ...store.env,
    SHIM_REAL_MODULE: SOFTHSM_MODULE,
    ...shimEnv,
    HSM_PKCS11_MODULE: shim,
    HSM_PKCS11_TOKEN: token.label,
    HSM_PKCS11_PIN: token.pin,
    HSM_PKCS11_URI: '',
  };
  return { store, env };
}

export async function buildFixtureModule(fixture: string, dir: string): Promise<string> {
  const out = join(dir, `${fixture.split('/').pop()!.replace(/\.c$/, '')}.so`);
  await exec('gcc', ['-shared', '-fPIC', '-O1', '-o', out, join(ROOT, 'fixtures', fixture), '-ldl']);
  return out;
}

/** Every process's parent pid, from /proc (field 4 of /proc/<pid>/stat, after the command's closing parenthesis). */
function parentPids(): Map<number, number> {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone meanwhile */
    }
  }
  return parentOf;
}

/** The pids of a process's direct children. */
export function childrenOf(pid: number): number[] {
  return [...parentPids()].flatMap(([child, parent]) => (parent === pid ? [child] : []));
}

/** The pids of all of a process's descendants. */
export function descendantsOf(root: number): number[] {
  const parentOf = parentPids();
  const found: number[] = [];
  for (let i = -1; i < found.length; i++) {
    const parent = i < 0 ? root : found[i];
    for (const [pid, p] of parentOf) if (p === parent) found.push(pid);
  }
  return found;
}

/** Whether a process is running: a zombie has ended, only its exit status waits to be read. */
export function processAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
