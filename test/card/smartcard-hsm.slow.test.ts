/**
 * The smartcard-hsm driver against a SmartCard-HSM that speaks the real card protocol through pcscd and
 * OpenSC: the emulated card CI starts (.ci/run exports HSM_TEST_CARD_ENV, the env file the card's start
 * script printed), or a physical card whose env file an operator names the same way. Without it every test
 * here skips with that reason.
 *
 * Checked: a full run has no failure that drivers/smartcard-hsm.expect.json does not list with its
 * evidence, the DKEK round trip (sc-hsm-tool backup, offline check with src/dkek, restore, sign, node:crypto
 * verify) passes, the card's object listing (`pkcs11-tool -O`) is the same before and after a run, a quick
 * bench and a run interrupted with Ctrl-C, and no PIN, SO-PIN or share password shows up in any output.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, cli, skipWithReason } from '../core/helpers.js';
import type { RunResults } from '../../src/results.js';

const exec = promisify(execFile);
const OPENSC_MODULE = '/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so';
const envFile = process.env.HSM_TEST_CARD_ENV;
const NO_CARD = 'no SmartCard-HSM for the card tests: HSM_TEST_CARD_ENV does not name an env file (CI sets it when an emulated card is present)';

/** The card's variables from its env file (`export NAME=value` lines, values optionally single-quoted). */
function cardEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(envFile!, 'utf8').split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(?:'([^']*)'|(.*))$/.exec(line.trim());
    if (m) env[m[1]!] = m[2] ?? m[3]!;
  }
  return env;
}

/** Every object the user can see on the card, as pkcs11-tool lists it. */
async function listing(env: Record<string, string>): Promise<string> {
  const r = await exec('pkcs11-tool', ['--module', OPENSC_MODULE, '--list-objects', '--login', '--pin', 'env:SCHSM_PIN'], {
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  // pkcs11-tool prints a profile object's handle, which differs from process to process: not part of the card's state.
  return r.stdout.replace(/^(Profile object) \d+$/gm, '$1');
}

describe.sequential('smartcard-hsm on a card', () => {
  let env: Record<string, string>;
  let secrets: string[];
  const outputs: [string, string][] = [];
  beforeAll(() => {
    if (!envFile) return;
    env = cardEnv();
    secrets = Object.entries(env)
      .filter(([k]) => /(PIN|PASSWORD)$/.test(k))
      .map(([, v]) => v);
  });

  test('run: only listed card/OpenSC limitations fail; the DKEK round trip passes; the card is left as it was', async (ctx) => {
    if (!envFile) return skipWithReason(ctx, NO_CARD);
    const before = await listing(env);
    const out = await mkdtemp(join(tmpdir(), 'hh-card-run-'));
    try {
      const r = await cli(['run', '--driver', 'smartcard-hsm', '--out', out], env, { timeoutMs: 900_000 });
      outputs.push(['run stdout', r.stdout], ['run stderr', r.stderr]);
      for (const f of await readdir(out)) outputs.push([f, await readFile(join(out, f), 'latin1')]);
      const d = (JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults).drivers.find((x) => x.id === 'smartcard-hsm')!;
      expect(d.status, d.statusReason).toBe('ran');
      // A listed limitation stays a fail with `expected` (its entry in drivers/smartcard-hsm.expect.json); nothing else may fail.
      const bad = d.cases.filter((c) => ['fail', 'crash', 'timeout'].includes(c.status) && !c.expected).map((c) => `${c.suite}/${c.case}: ${c.reason}`);
      expect(bad).toEqual([]);
      for (const c of d.cases.filter((x) => x.expected)) expect(c.expected!.source.ref, `${c.suite}/${c.case}`).toBeTruthy();
      expect(d.cases.find((c) => c.suite === 'dkek' && c.case === 'smartcard-hsm-wrap-unwrap-ec-p256')?.status).toBe('pass');
      expect(d.cases.find((c) => c.suite === 'cleanup')?.status).toBe('pass');
      expect(r.code).toBe(0);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    expect(await listing(env)).toBe(before);
  }, 960_000);

  test('bench --quick leaves the card as it was', async (ctx) => {
    if (!envFile) return skipWithReason(ctx, NO_CARD);
    const before = await listing(env);
    const out = await mkdtemp(join(tmpdir(), 'hh-card-bench-'));
    try {
      const r = await cli(['bench', '--driver', 'smartcard-hsm', '--quick', '--out', out], env, { timeoutMs: 600_000 });
      outputs.push(['bench stdout', r.stdout], ['bench stderr', r.stderr]);
      for (const f of await readdir(out)) outputs.push([`bench ${f}`, await readFile(join(out, f), 'latin1')]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    expect(await listing(env)).toBe(before);
  }, 660_000);

  test("bench --compare ods-hsmspeed: ods-hsmspeed gets the card to itself between the harness's batches, both figures exist, the card is left as it was", async (ctx) => {
    if (!envFile) return skipWithReason(ctx, NO_CARD);
    const before = await listing(env);
    const out = await mkdtemp(join(tmpdir(), 'hh-card-hsmspeed-'));
    try {
      const r = await cli(['bench', '--driver', 'smartcard-hsm', '--compare', 'ods-hsmspeed', '--time', '15', '--out', out], env, { timeoutMs: 600_000 });
      outputs.push(['hsmspeed stdout', r.stdout], ['hsmspeed stderr', r.stderr]);
      for (const f of await readdir(out)) outputs.push([`hsmspeed ${f}`, await readFile(join(out, f), 'latin1')]);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(await readFile(join(out, 'bench.json'), 'utf8')) as {
        drivers: { id: string; hsmspeed: { rows: { threads: number; ods?: { best: number }; harness?: { best: number }; ratio?: number }[] } }[];
      };
      // A card executes one command at a time: one signer thread, compared with ods-hsmspeed -t 1.
      const rows = doc.drivers.find((d) => d.id === 'smartcard-hsm')!.hsmspeed.rows;
      expect(rows.map((x) => x.threads)).toEqual([1]);
      expect(rows[0]!.ods?.best).toBeGreaterThan(0);
      expect(rows[0]!.harness?.best).toBeGreaterThan(0);
      expect(rows[0]!.ratio).toBeCloseTo(rows[0]!.harness!.best / rows[0]!.ods!.best, 10);
      expect(r.stdout).toMatch(/smartcard-hsm: 1 thread, \d+ signatures per thread: ods-hsmspeed [\d.]+ sig\/s, harness [\d.]+ sig\/s, ratio [\d.]+/);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    expect(await listing(env)).toBe(before);
  }, 660_000);

  test('a run interrupted with Ctrl-C during key generation leaves the card as it was', async (ctx) => {
    if (!envFile) return skipWithReason(ctx, NO_CARD);
    const before = await listing(env);
    const out = await mkdtemp(join(tmpdir(), 'hh-card-int-'));
    const child = spawn('node', [CLI, 'run', '--driver', 'smartcard-hsm', '--suite', 'keygen', '--out', join(out, 'reports')], {
      env: { ...process.env, ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout!.on('data', (b: Buffer) => {
      text += b.toString();
    });
    child.stderr!.on('data', (b: Buffer) => {
      text += b.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Interrupt once the first key pair is on the card (its generate case has passed), bounded.
    for (let i = 0; i < 600 && !/keygen\/generate\/rsa-2048/.test(text); i++) await new Promise((r) => setTimeout(r, 200));
    expect(text).toMatch(/keygen\/generate\/rsa-2048/);
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toBe(130);
    outputs.push(['interrupted run', text]);
    await rm(out, { recursive: true, force: true });
    expect(await listing(env)).toBe(before);
  }, 300_000);

  test('no PIN, SO-PIN or DKEK share password appears in any output or report', (ctx) => {
    if (!envFile) return skipWithReason(ctx, NO_CARD);
    expect(secrets.length).toBeGreaterThanOrEqual(4);
    expect(outputs.length).toBeGreaterThan(5);
    for (const [where, text] of outputs) for (const s of secrets) expect(text.includes(s), `a secret in ${where}`).toBe(false);
  });
});
