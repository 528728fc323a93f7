/**
 * Terminal and edge cases (issue 23): what `drivers`, `run` and `discover` print to a terminal carries no raw
 * control or bidi characters from the environment or the command line; `drivers` refuses a URI pin-value
 * equal to the token label as `run` does; a dangling-symlink --out is refused before the run; `discover` on a
 * module that crashes or hangs says so on stderr in one line (fault-injecting shims in front of SoftHSM).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SOFTHSM_MODULE, buildFixtureModule, cli, makeSoftHsmToken } from '../core/helpers.js';

const haveTools = existsSync('/usr/bin/gcc') && existsSync(SOFTHSM_MODULE);
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-edges-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('what reaches the terminal', () => {
  test('drivers: an ESC sequence and U+202E in HSM_PKCS11_TOKEN are shown as text', async () => {
    const r = await cli(['drivers'], { HSM_PKCS11_MODULE: SOFTHSM_MODULE, HSM_PKCS11_TOKEN: 'evil\x1b[2J\u202eXYZ' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(RAW);
    expect(r.stdout).toContain('evil\\x1b[2J\\u{202e}XYZ');
  });

  test('drivers: a URI pin-value equal to the token label is refused, as run refuses it, and never printed', async () => {
    const pin = 'samepin-label-77';
    const env = { HSM_PKCS11_URI: `pkcs11:token=${pin}?module-path=${SOFTHSM_MODULE}&pin-value=${pin}` };
    const listed = await cli(['drivers'], env);
    expect(listed.code).toBe(0);
    const row = listed.stdout.split('\n').find((l) => l.startsWith('pkcs11 '))!;
    expect(row).toMatch(/unavailable +misconfigured: .*PIN occurs in a word the reports show/);
    expect(listed.stdout + listed.stderr).not.toContain(pin);
    const run = await cli(['run', '--driver', 'pkcs11', '--out', join(dir, 'never')], env);
    expect(run.code).toBe(2);
    expect(run.stderr + run.stdout).not.toContain(pin);
  });

  test('run: the reports line shows an --out with control characters escaped', async () => {
    const out = join(dir, 'out-\x1b[31m-\u202e');
    const r = await cli(['run', '--driver', 'softhsm', '--suite', 'discovery', '--out', out, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('reports: '))!;
    expect(line).toContain('out-\\x1b[31m-\\u{202e}');
    expect(r.stdout).not.toMatch(RAW);
  });

  test('run: a dangling-symlink --out is refused before anything runs', async () => {
    const link = join(dir, 'dangling');
    await symlink(join(dir, 'nowhere'), link);
    const r = await cli(['run', '--driver', 'softhsm', '--out', link], {}, { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/is a symbolic link to .*nowhere, which does not exist/);
    expect(existsSync(join(dir, 'nowhere'))).toBe(false);
  });
});

describe.skipIf(!haveTools)(haveTools ? 'discover on a broken module' : 'discover on a broken module (skipped: gcc and SoftHSM are needed)', () => {
  test.each([
    ['crashes', 'pkcs11/chatty-shim.c', { SHIM_LEAK: 'drip' }, /crashed \(the driver's process died \(SIGABRT\)/],
    ['hangs', 'fake-modules/fault-shim.c', { FAULT_HANG: 'C_GetMechanismInfo', HSM_CASE_TIMEOUT_S: '3' }, /did not answer in time/],
  ])('a module that %s: exit 1 and one line on stderr saying what happened and what to do', async (what, fixture, extra, says) => {
    const sub = join(dir, what);
    await mkdir(sub);
    const shim = await buildFixtureModule(fixture, sub);
    const pin = `discover-pin-${what}-7781`;
    const token = await makeSoftHsmToken(`hh-disc-${what}`, pin);
    try {
      const r = await cli(['discover', '--driver', 'pkcs11'], {
        SOFTHSM2_CONF: token.conf,
        SHIM_REAL_MODULE: SOFTHSM_MODULE,
        FAULT_REAL_MODULE: SOFTHSM_MODULE,
        HSM_PKCS11_MODULE: shim,
        HSM_PKCS11_TOKEN: `hh-disc-${what}`,
        HSM_PKCS11_PIN: pin,
        HSM_HARNESS_STATE_DIR: join(sub, 'state'),
        ...extra,
      });
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^hsm-harness: discover: the module of driver pkcs11 /);
      expect(lines[0]).toMatch(says);
      expect(lines[0]).toContain("check the module with its vendor's tools");
      expect(r.stdout + r.stderr).not.toContain(pin);
    } finally {
      await rm(token.dir, { recursive: true, force: true });
    }
  });
});
