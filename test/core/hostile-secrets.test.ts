/**
 * Secrets and terminal safety under hostile input, end to end through the built CLI (issue 11, items 1, 5
 * and 10): an unrelated *_SECRET variable cannot hide failures; PINs that cannot be masked safely are
 * refused; a module that prints its PIN (as text, hex and base64, wrapped in ANSI escapes) to stderr and
 * dies has none of it reach stdout, stderr or any report; generated PINs never appear in any process's argv.
 * The fault injection is done by shims in front of the real SoftHSM (fixtures/pkcs11/*.c, built here).
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, CLI, makeSoftHsmToken, SOFTHSM_MODULE, skipWithReason, type CliResult, buildFixtureModule } from './helpers.js';
import type { TestContext } from 'vitest';
import type { RunResults } from '../../src/results.js';

const haveGcc = existsSync('/usr/bin/gcc');
let dir: string;
let lyingShim: string;
let chattyShim: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-hostile-'));
  if (!haveGcc) return;
  lyingShim = await buildFixtureModule('pkcs11/lying-shim.c', dir);
  chattyShim = await buildFixtureModule('pkcs11/chatty-shim.c', dir);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function needGcc(ctx: TestContext): Promise<void> {
  if (!haveGcc) await skipWithReason(ctx, '/usr/bin/gcc is missing: install gcc to build the fault-injecting shims');
}

/** Every output of a run: stdout, stderr and each report file. */
async function outputs(r: CliResult, out: string): Promise<[string, string][]> {
  const texts: [string, string][] = [
    ['stdout', r.stdout],
    ['stderr', r.stderr],
  ];
  if (existsSync(out)) for (const f of await readdir(out)) texts.push([f, await readFile(join(out, f), 'latin1')]);
  return texts;
}

describe('masking never hides a failure or rewrites structure', () => {
  test('SOME_APP_SECRET=fail and OTHER_PASSWORD=pass in the environment: the failing case is still a failure', async (ctx) => {
    await needGcc(ctx);
    const pin = 'lying-token-pin-4417';
    const token = await makeSoftHsmToken('hh-lies', pin);
    const out = join(dir, 'app-secret');
    try {
      const r = await cli(['run', '--driver', 'pkcs11', '--suite', 'discovery', '--out', out], {
        SOFTHSM2_CONF: token.conf,
        SHIM_REAL_MODULE: SOFTHSM_MODULE,
        HSM_PKCS11_MODULE: lyingShim,
        HSM_PKCS11_TOKEN: 'hh-lies',
        HSM_PKCS11_PIN: pin,
        SOME_APP_SECRET: 'fail',
        OTHER_PASSWORD: 'pass',
        UNRELATED_PASSPHRASE: 'softhsm',
      });
      const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
      const d = results.drivers[0]!;
      expect(d.id).toBe('pkcs11');
      expect(d.cases.find((c) => c.case === 'exercise/CKM_SHA512_RSA_PKCS')?.status).toBe('fail');
      expect(results.summary.fail).toBeGreaterThan(0);
      expect(r.stdout).toMatch(new RegExp(`${results.summary.fail} failed`));
      expect(r.stdout).not.toContain('***');
      expect(await readFile(join(out, 'junit.xml'), 'utf8')).toContain('<failure');
      expect(d.info.module).toBe(lyingShim);
      expect(r.code).toBe(1);
    } finally {
      await rm(token.dir, { recursive: true, force: true });
    }
  });

  test.each([
    ['pass', SOFTHSM_MODULE],
    ['softhsm', SOFTHSM_MODULE],
    ['libsofthsm2', SOFTHSM_MODULE],
    ['abc', SOFTHSM_MODULE],
    ['2048', SOFTHSM_MODULE],
  ])('a PIN %j is refused: exit 2, one line that does not contain it, no report', async (pin, module) => {
    const out = join(dir, `refused-${pin}`);
    const r = await cli(['run', '--driver', 'pkcs11', '--suite', 'discovery', '--out', out], {
      HSM_PKCS11_MODULE: module,
      HSM_PKCS11_TOKEN: 'any-token',
      HSM_PKCS11_PIN: pin,
    });
    expect(r.code).toBe(2);
    // Progress lines may come first; the error is one line of its own.
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('hsm-harness:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^hsm-harness: HSM_PKCS11_PIN (is|occurs)/);
    expect(
      lines[0]!
        .replace(module, '')
        .toLowerCase()
        .split(/[^a-z0-9]+/),
    ).not.toContain(pin);
    expect(existsSync(join(out, 'results.json'))).toBe(false);
  });
});

describe('a module that prints its PIN to stderr and dies', () => {
  // Shapes: the emulated card's user PIN and SO PIN, a hex-looking and a base64-looking PIN, text with symbols.
  test.for(['648219', '3537363231383830', 'deadbeefcafe0042', 'Q0FOQVJZLWI2NA==', 'Canary;pin&x/y+z'])(
    'PIN %j: masked in every form, escapes neutralised',
    async (pin, ctx) => {
      await needGcc(ctx);
      const token = await makeSoftHsmToken('hh-chatty', pin);
      const out = join(dir, `chatty-${pin.length}-${pin.charCodeAt(0)}`);
      try {
        const r = await cli(['run', '--driver', 'pkcs11', '--suite', 'discovery', '--out', out], {
          SOFTHSM2_CONF: token.conf,
          SHIM_REAL_MODULE: SOFTHSM_MODULE,
          HSM_PKCS11_MODULE: chattyShim,
          HSM_PKCS11_TOKEN: 'hh-chatty',
          HSM_PKCS11_PIN: pin,
        });
        const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
        const d = results.drivers[0]!;
        expect(d.status).toBe('crash');
        const crash = d.cases.find((c) => c.status === 'crash')!;
        // The module's line is quoted, masked, with its escape sequences shown as text.
        expect(crash.reason).toContain('chatty-shim: \\x1b[2J\\x1b[31mC_Login pin=*** hex=*** b64=***');
        const forms = [pin, Buffer.from(pin).toString('hex'), Buffer.from(pin).toString('base64'), Buffer.from(pin).toString('base64').replace(/=+$/, '')];
        const texts = await outputs(r, out);
        expect(texts.length).toBeGreaterThanOrEqual(6);
        for (const [name, text] of texts) {
          for (const f of forms) expect(text.toLowerCase(), `${name} holds ${f}`).not.toContain(f.toLowerCase());
          expect(text, `${name} holds a raw escape character`).not.toMatch(/[\x1b\x9b]/);
        }
        expect(r.code).toBe(1);
      } finally {
        await rm(token.dir, { recursive: true, force: true });
      }
    },
  );
});

describe('terminal safety and argv', () => {
  test('ANSI escapes in argv are shown escaped in the one-line error', async () => {
    const r = await cli(['run', '--driver', '\x1b[2J\x1b]0;owned\x07evil', '--out', join(dir, 'ansi')]);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/[\x1b\x07]/);
    expect(r.stderr).toContain('unknown driver "\\x1b[2J\\x1b]0;owned\\x07evil"');
  });

  test('generated and given SoftHSM PINs never appear on any command line while tokens are made', async () => {
    const canary = 'argv-canary-PIN-5e1d';
    const seen: string[] = [];
    const out = join(dir, 'argv');
    // Other runs on this machine are none of this test's business: only the harness's own process tree counts.
    const child = spawn('node', [CLI, 'run', '--driver', 'softhsm', '--suite', 'discovery', '--out', out], {
      env: { ...process.env, HSM_HARNESS_SOFTHSM_PIN: canary },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let running = true;
    void exited.then(() => {
      running = false;
    });
    const parentOf = async (pid: string) => (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).replace(/^.*\) \S+ /, '').split(' ')[0];
    const descends = async (pid: string) => {
      for (let p: string | undefined = pid, i = 0; p && p !== '0' && i < 30; i++, p = await parentOf(p)) if (p === String(child.pid)) return true;
      return false;
    };
    // Poll every process's argv while the harness makes its three tokens (main and two spares).
    while (running) {
      for (const pid of await readdir('/proc').catch(() => [] as string[])) {
        if (!/^\d+$/.test(pid)) continue;
        const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
        if (!/softhsm|--pin|--so-pin/.test(cmd) && !cmd.includes(canary)) continue;
        if (await descends(pid)) seen.push(cmd);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await exited).toBe(0);
    const leaks = seen.filter((s) => s.includes(canary) || / --(so-)?pin /.test(s));
    expect(leaks).toEqual([]);
    // The watcher did see token initialisers run (so it was looking at the right moment), without PINs.
    expect(seen.some((s) => s.includes('softhsm-init'))).toBe(true);
  });
});
