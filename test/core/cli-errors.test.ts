/**
 * Bad input: each mistake gets exit 2 and one line on stderr naming the problem and the fix, and no
 * report is written or damaged (a previous complete report stays as it was).
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, makeSoftHsmToken, SOFTHSM_MODULE } from './helpers.js';

let token: { conf: string; dir: string };
const PIN = 'right-pin-4711';
const tempDirs: string[] = [];

beforeAll(async () => {
  token = await makeSoftHsmToken('cli-errors', PIN);
  tempDirs.push(token.dir);
});
afterAll(async () => {
  for (const d of tempDirs) await rm(d, { recursive: true, force: true });
});

async function expectUsageError(args: string[], env: NodeJS.ProcessEnv, pattern: RegExp) {
  const out = await mkdtemp(join(tmpdir(), 'hh-bad-'));
  tempDirs.push(out);
  const sentinel = '{"previous":"complete report"}\n';
  await writeFile(join(out, 'results.json'), sentinel);
  const r = await cli([...args, '--out', out], env);
  expect(r.code).toBe(2);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('hsm-harness:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(await readFile(join(out, 'results.json'), 'utf8')).toBe(sentinel);
  expect((await readdir(out)).sort()).toEqual(['results.json']);
  return lines[0]!;
}

describe('bad input exits 2 with one line and leaves reports alone', () => {
  test('unknown driver', async () => {
    const line = await expectUsageError(['run', '--driver', 'no-such-hsm'], {}, /unknown driver "no-such-hsm"; known drivers: .*softhsm/);
    expect(line).toMatch(/hsm-harness drivers/);
  });

  test('unknown suite', async () => {
    await expectUsageError(['run', '--driver', 'softhsm', '--suite', 'nope'], {}, /unknown suite "nope"/);
  });

  test('unknown option', async () => {
    await expectUsageError(['run', '--drivr', 'softhsm'], {}, /Unknown option '--drivr'.*--help/);
  });

  test('missing module file', async () => {
    await expectUsageError(
      ['run', '--driver', 'pkcs11'],
      { HSM_PKCS11_MODULE: '/nonexistent/libvendor.so', HSM_PKCS11_TOKEN: 'any', HSM_PKCS11_PIN: 'x' },
      /PKCS#11 module not found: \/nonexistent\/libvendor.so; install it or fix the module path/,
    );
  });

  test('unknown token label lists the labels that are there', async () => {
    await expectUsageError(
      ['run', '--driver', 'pkcs11'],
      { HSM_PKCS11_MODULE: SOFTHSM_MODULE, HSM_PKCS11_TOKEN: 'no-such-label', HSM_PKCS11_PIN: PIN, SOFTHSM2_CONF: token.conf },
      /no token with label "no-such-label" .*tokens present: "cli-errors".*HSM_PKCS11_TOKEN/,
    );
  });

  test('malformed PKCS#11 URI', async () => {
    await expectUsageError(['run', '--driver', 'pkcs11'], { HSM_PKCS11_URI: 'pkcs11:token=a;slot-id=x1' }, /malformed PKCS#11 URI .*slot-id must be a decimal/);
  });

  test('wrong PIN from the environment, and the PIN is not echoed', async () => {
    const wrong = 'wrong-pin-0815';
    const line = await expectUsageError(
      ['run', '--driver', 'pkcs11'],
      { HSM_PKCS11_MODULE: SOFTHSM_MODULE, HSM_PKCS11_TOKEN: 'cli-errors', HSM_PKCS11_PIN: wrong, SOFTHSM2_CONF: token.conf },
      /PIN was rejected by the token \(CKR_PIN_INCORRECT\); check the PIN source/,
    );
    expect(line).not.toContain(wrong);
  });

  test('a URI attribute the harness cannot match (a typo) is refused, not ignored', async () => {
    await expectUsageError(
      ['run', '--driver', 'pkcs11'],
      { HSM_PKCS11_URI: `pkcs11:tokn=cli-errors?module-path=${SOFTHSM_MODULE}`, HSM_PKCS11_PIN: PIN, SOFTHSM2_CONF: token.conf },
      /HSM_PKCS11_URI has attribute\(s\) this harness cannot match: tokn/,
    );
  });

  test('a module without a named token is refused (never "the first token")', async () => {
    await expectUsageError(
      ['run', '--driver', 'pkcs11'],
      { HSM_PKCS11_MODULE: SOFTHSM_MODULE, HSM_PKCS11_PIN: PIN, SOFTHSM2_CONF: token.conf },
      /HSM_PKCS11_MODULE is set but HSM_PKCS11_TOKEN is not/,
    );
    await expectUsageError(
      ['run', '--driver', 'pkcs11'],
      { HSM_PKCS11_URI: `pkcs11:?module-path=${SOFTHSM_MODULE}`, HSM_PKCS11_PIN: PIN, SOFTHSM2_CONF: token.conf },
      /HSM_PKCS11_URI names no token/,
    );
  });

  test('missing PIN for a configured module', async () => {
    await expectUsageError(
      ['run', '--driver', 'pkcs11'],
      { HSM_PKCS11_MODULE: SOFTHSM_MODULE, HSM_PKCS11_TOKEN: 'cli-errors', SOFTHSM2_CONF: token.conf },
      /HSM_PKCS11_PIN is not set/,
    );
  });

  test('an --out that cannot be written is found before the run, not after it', async () => {
    // Under /proc, Node's own recursive mkdir never returns; the harness must answer at once instead.
    for (const [out, code] of [
      ['/proc/hsm-harness-nope', 'ENOENT'],
      ['/etc/hostname/reports', 'ENOTDIR'],
    ] as const) {
      const r = await cli(['run', '--driver', 'softhsm', '--out', out], {}, { timeoutMs: 30_000 });
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(`hsm-harness: cannot write reports to ${out} (${code}); choose a writable directory with --out`);
      expect(r.stderr).not.toMatch(/starting/);
    }
  });

  test('asking only for drivers that cannot run here is not a green run', async () => {
    const out = await mkdtemp(join(tmpdir(), 'hh-none-'));
    const r = await cli(['run', '--driver', 'smartcard-hsm', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/none of the requested drivers could run, so nothing was tested: smartcard-hsm \(SCHSM_PIN is not set/);
    // The reports are still written, so that the reason reaches the JUnit XML.
    expect(await readFile(join(out, 'junit.xml'), 'utf8')).toMatch(/skip-reason" value="unavailable: SCHSM_PIN is not set/);
    await rm(out, { recursive: true, force: true });
  });

  test('unknown command', async () => {
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^hsm-harness: unknown command "frobnicate"; commands: run, drivers/);
  });
});
