/**
 * Helpers for the safety tests: a SoftHSM token that already holds objects the harness did not create
 * (made with OpenSC's pkcs11-tool, an independent implementation), an object listing by pkcs11-tool as the
 * oracle, and the fault-injecting shim (fixtures/fake-modules/fault-shim.c) built with gcc.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, SOFTHSM_MODULE, makeSoftHsmToken, buildFixtureModule } from '../core/helpers.js';
import type { JournalEntry } from '../../src/journal.js';

const exec = promisify(execFile);
export const haveTools = existsSync('/usr/bin/gcc') && existsSync('/usr/bin/pkcs11-tool') && existsSync(SOFTHSM_MODULE);
export const TOOLS_MISSING = 'gcc, pkcs11-tool (opensc) and SoftHSM are needed; run npm test, which installs them';

export async function buildShim(dir: string): Promise<string> {
  const out = await buildFixtureModule('fake-modules/fault-shim.c', dir);
  return out;
}

export interface ForeignToken {
  label: string;
  pin: string;
  conf: string;
  dir: string;
  env: Record<string, string>;
}

/** A token with four objects the harness did not make: an EC key pair, an AES key and a data object. */
export async function tokenWithForeignObjects(label: string, pin: string): Promise<ForeignToken> {
  const { conf, dir } = await makeSoftHsmToken(label, pin);
  const env = { ...process.env, SOFTHSM2_CONF: conf } as Record<string, string>;
  const tool = (args: string[]) => exec('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', label, '--login', '--pin', pin, ...args], { env });
  await tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'foreign-ec', '--id', '0102']);
  await tool(['--keygen', '--key-type', 'AES:16', '--label', 'foreign-aes', '--id', '03']);
  const data = join(dir, 'data.bin');
  await writeFile(data, "not the harness's\n");
  await tool(['--write-object', data, '--type', 'data', '--label', 'foreign-data']);
  return { label, pin, conf, dir, env: { SOFTHSM2_CONF: conf } };
}

/** Every object on the token as pkcs11-tool lists it after a login: "<kind>: <label>" lines, sorted. */
export async function listObjects(t: ForeignToken): Promise<string[]> {
  const r = await exec('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', t.label, '--login', '--pin', t.pin, '--list-objects'], {
    env: { ...process.env, ...t.env },
  });
  const out: string[] = [];
  let kind = '';
  for (const line of r.stdout.split('\n')) {
    const k = /^(Private Key|Public Key|Secret Key|Data|Certificate) [Oo]bject/.exec(line);
    if (k) {
      kind = k[1]!;
      out.push(`${kind}: ?`);
      continue;
    }
    const l = /^\s+label:\s+(.*)$/.exec(line);
    if (l && out.length && out.at(-1)!.endsWith(': ?')) out[out.length - 1] = `${kind}: ${l[1]!.trim().replace(/^'(.*)'$/, '$1')}`;
  }
  return out.sort();
}

export interface ShimmedToken {
  /** A scratch directory for reports and state. */
  dir: string;
  /** The fault shim, built in dir. */
  shim: string;
  token: ForeignToken;
  /** What a run of the generic pkcs11 driver needs to reach the token through the shim. */
  runEnv: Record<string, string>;
}

/**
 * The set-up most safety tests share, registered in the calling describe block: a scratch directory, the
 * fault shim and a token with foreign objects, all removed afterwards. Read the fields inside tests.
 */
export function shimmedForeignToken(name: string, pin: string): ShimmedToken {
  const setup = {} as ShimmedToken;
  beforeAll(async () => {
    setup.dir = await tempDir(`${name}-`);
    setup.shim = await buildShim(setup.dir);
    setup.token = await tokenWithForeignObjects(name, pin);
    setup.runEnv = { ...setup.token.env, HSM_PKCS11_MODULE: setup.shim, HSM_PKCS11_TOKEN: name, HSM_PKCS11_PIN: pin };
  });
  afterAll(async () => {
    for (const d of [setup.dir, setup.token?.dir]) if (d) await rm(d, { recursive: true, force: true });
  });
  return setup;
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Environment for a run of the generic pkcs11 driver on `module`, without the developer's own hardware settings. */
export function harnessEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (/^(HSM_|SCHSM_|YUBIHSM_|KMIP_|NETHSM_|FAULT_)/.test(k)) delete env[k];
  return { ...env, ...extra };
}

/**
 * What a run of the generic pkcs11 driver needs to reach `token` through the fault shim (in front of real SoftHSM),
 * with its journal in `state`. The FAULT_* switch for the run is the caller's.
 */
export function shimRunEnv(token: ForeignToken, shim: string, state: string): NodeJS.ProcessEnv {
  return harnessEnv({
    ...token.env,
    FAULT_REAL_MODULE: SOFTHSM_MODULE,
    HSM_PKCS11_MODULE: shim,
    HSM_PKCS11_TOKEN: token.label,
    HSM_PKCS11_PIN: token.pin,
    HSM_HARNESS_STATE_DIR: state,
  });
}

/** Every line of every run journal in a state directory, in order. */
export function journalEntries(state: string): JournalEntry[] {
  const runs = join(state, 'runs');
  if (!existsSync(runs)) return [];
  return readdirSync(runs).flatMap((f) =>
    readFileSync(join(runs, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as JournalEntry),
  );
}

/** Start `hsm-harness <args>` without waiting; the caller kills it or waits for its exit. */
export function startHarness(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn('node', [CLI, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => err };
}

export { exec };
