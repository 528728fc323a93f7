/**
 * The discovery suite must catch a token that lies about its mechanisms. SoftHSM does not lie, so a small
 * shim (fixtures/pkcs11/lying-shim.c, the pattern of smartcards4dnssec's rlpkcs11sc.c) sits in front of the
 * real SoftHSM and hides one working mechanism and breaks one advertised mechanism.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DriverReport } from '../../src/results.js';
import { SoftHsmStore, SOFTHSM_MODULE } from '../../src/softhsm.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');

let dir: string;
let store: SoftHsmStore;
let report: DriverReport;
let exitCode: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-lies-'));
  const shim = join(dir, 'lying-shim.so');
  await exec('gcc', ['-shared', '-fPIC', '-O1', '-o', shim, join(ROOT, 'fixtures', 'pkcs11', 'lying-shim.c'), '-ldl']);
  store = await SoftHsmStore.create();
  const token = await store.addToken('hh-lies');
  const env = { ...process.env, ...store.env, SHIM_REAL_MODULE: SOFTHSM_MODULE,
    HSM_PKCS11_MODULE: shim, HSM_PKCS11_TOKEN: token.label, HSM_PKCS11_PIN: token.pin, HSM_PKCS11_URI: '' };
  exitCode = await exec('node', [CLI, 'run', '--driver', 'pkcs11', '--suite', 'discovery', '--out', dir], { env })
    .then(() => 0, (err: { code?: number }) => err.code ?? -1);
  report = (JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as { drivers: DriverReport[] }).drivers[0]!;
});

afterAll(async () => {
  await store?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('discovery against a lying token', () => {
  test('an advertised mechanism that fails is a lie and a failed case; the run exits 1', () => {
    const c = report.cases.find((x) => x.case === 'exercise/CKM_SHA512_RSA_PKCS')!;
    expect(c.status).toBe('fail');
    expect(c.ckr?.name).toBe('CKR_MECHANISM_INVALID');
    expect(report.findings.filter((f) => f.kind === 'lie').map((f) => f.text)).toEqual([expect.stringMatching(/^CKM_SHA512_RSA_PKCS advertises CKF_SIGN but signing fails: CKR_MECHANISM_INVALID/)]);
    expect(report.mechanisms.find((m) => m.name === 'CKM_SHA512_RSA_PKCS')?.exercised).toBe('fails: CKR_MECHANISM_INVALID');
    expect(exitCode).toBe(1);
  });

  test('a working mechanism missing from the list is reported as unadvertised, not as a failure', () => {
    expect(report.cases.find((x) => x.case === 'exercise/CKM_SHA256_RSA_PKCS')?.status).toBe('pass');
    expect(report.mechanisms.some((m) => m.name === 'CKM_SHA256_RSA_PKCS')).toBe(false);
    expect(report.findings.filter((f) => f.kind === 'unadvertised').map((f) => f.text)).toEqual([expect.stringMatching(/^CKM_SHA256_RSA_PKCS works for signing but is not in C_GetMechanismList/)]);
  });

  test('the honest mechanisms behind the shim still pass', () => {
    for (const name of ['CKM_RSA_PKCS', 'CKM_ECDSA', 'CKM_EDDSA', 'CKM_RSA_PKCS_KEY_PAIR_GEN']) {
      expect(report.cases.find((x) => x.case === `exercise/${name}`)?.status, name).toBe('pass');
    }
  });
});
