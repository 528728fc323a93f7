/**
 * The discovery suite must catch a token that lies about its mechanisms. SoftHSM does not lie, so a small
 * shim (fixtures/pkcs11/lying-shim.c, the pattern of smartcards4dnssec's rlpkcs11sc.c) sits in front of the
 * real SoftHSM: it hides one working mechanism, breaks one advertised mechanism, adds CKF_SIGN, CKF_VERIFY,
 * CKF_GENERATE_KEY_PAIR and CKF_DIGEST to every mechanism and refuses every C_VerifyInit; with SHIM_REFUSE_OBJECTS=1
 * it also answers C_CreateObject and C_SetAttributeValue with CKR_FUNCTION_NOT_SUPPORTED. It is reached through
 * the generic pkcs11 driver, which treats it as a physical token.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DriverReport } from '../../src/results.js';
import type { SoftHsmStore } from '../../src/softhsm.js';
import { CLI, shimOverSoftHsm } from '../core/helpers.js';

const exec = promisify(execFile);

let dir: string;
let store: SoftHsmStore;
let report: DriverReport;
let exitCode: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-lies-'));
  let env: NodeJS.ProcessEnv;
  ({ store, env } = await shimOverSoftHsm('pkcs11/lying-shim.c', dir, 'hh-lies', { SHIM_REFUSE_OBJECTS: '1', CI: '' }));
  exitCode = await exec('node', [CLI, 'run', '--driver', 'pkcs11', '--suite', 'discovery', '--suite', 'keygen', '--suite', 'signing', '--out', dir], {
    env,
  }).then(
    () => 0,
    (err: { code?: number }) => err.code ?? -1,
  );
  report = (JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as { drivers: DriverReport[] }).drivers[0]!;
}, 300_000);

afterAll(async () => {
  await store?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const lies = () => report.findings.filter((f) => f.kind === 'lie').map((f) => f.text);
const flagsOf = (name: string) => report.mechanisms.find((m) => m.name === name)?.exercisedFlags ?? {};

// The function flags the PKCS#11 mechanism tables allow per class (Current Mechanisms v2.40 §2.1, §2.3, §2.14,
// §2.16; 3.0 §2.3.14 for EdDSA), written out here from the spec rather than taken from the suite.
const KEY_PAIR_GEN = ['CKM_RSA_PKCS_KEY_PAIR_GEN', 'CKM_EC_KEY_PAIR_GEN', 'CKM_EC_EDWARDS_KEY_PAIR_GEN'];
const SIGNATURE = ['CKM_RSA_PKCS', 'CKM_SHA512_RSA_PKCS', 'CKM_RSA_PKCS_PSS', 'CKM_ECDSA', 'CKM_EDDSA'];
const DIGESTS = ['CKM_SHA_1', 'CKM_SHA256', 'CKM_SHA384', 'CKM_SHA512'];
const AES = ['CKM_AES_KEY_GEN', 'CKM_AES_KEY_WRAP', 'CKM_AES_KEY_WRAP_PAD'];

describe('discovery against a lying token', () => {
  test('a flag outside the mechanism class is one lie per mechanism and flag, with what the token answered', () => {
    const contradictions = (mechs: string[], flags: string[]) => mechs.flatMap((m) => flags.map((f) => `${m} CKF_${f}`));
    const expected = [
      ...contradictions(KEY_PAIR_GEN, ['DIGEST', 'SIGN', 'VERIFY']),
      ...contradictions(SIGNATURE, ['DIGEST', 'GENERATE_KEY_PAIR']),
      ...contradictions(DIGESTS, ['SIGN', 'VERIFY', 'GENERATE_KEY_PAIR']),
      ...contradictions(AES, ['DIGEST', 'SIGN', 'VERIFY', 'GENERATE_KEY_PAIR']),
    ].sort();
    const found = lies().filter((t) => t.includes('which PKCS#11 does not define'));
    expect(found.map((t) => /^(\S+) advertises (CKF_\w+)/.exec(t)!.slice(1).join(' ')).sort()).toEqual(expected);
    expect(found.find((t) => t.startsWith('CKM_SHA256 advertises CKF_SIGN'))).toMatch(/observed: C_SignInit returned CKR_MECHANISM_INVALID/);
    expect(found.find((t) => t.startsWith('CKM_AES_KEY_GEN advertises CKF_VERIFY'))).toMatch(/observed: C_VerifyInit returned CKR_FUNCTION_NOT_SUPPORTED/);
  });

  test('an advertised function that is refused is a lie and a failed case; the run exits 1', () => {
    const refused = lies().filter((t) => !t.includes('which PKCS#11 does not define'));
    expect(refused.sort()).toEqual(
      [
        ...SIGNATURE.map((m) => `${m} advertises CKF_VERIFY but verification fails: CKR_FUNCTION_NOT_SUPPORTED`),
        'CKM_SHA512_RSA_PKCS advertises CKF_SIGN but signing fails: CKR_MECHANISM_INVALID',
      ].sort(),
    );
    const c = report.cases.find((x) => x.case === 'exercise/CKM_SHA512_RSA_PKCS')!;
    expect(c.status).toBe('fail');
    expect(c.ckr?.name).toBe('CKR_MECHANISM_INVALID');
    expect(flagsOf('CKM_SHA512_RSA_PKCS').SIGN).toBe('fails: CKR_MECHANISM_INVALID');
    for (const name of [...KEY_PAIR_GEN, ...SIGNATURE, ...DIGESTS, ...AES]) {
      expect(report.cases.find((x) => x.case === `exercise/${name}`)?.status, name).toBe('fail');
    }
    expect(exitCode).toBe(1);
  });

  test('what the token really does still shows: the honest functions behind the shim work', () => {
    for (const name of ['CKM_RSA_PKCS', 'CKM_ECDSA', 'CKM_EDDSA']) expect(flagsOf(name).SIGN, name).toBe('works');
    expect(flagsOf('CKM_RSA_PKCS_KEY_PAIR_GEN').GENERATE_KEY_PAIR).toBe('works');
    expect(flagsOf('CKM_SHA256').DIGEST).toBe('works');
  });

  test('a physical token is not asked to perform a mechanism it does not list', () => {
    const c = report.cases.find((x) => x.case === 'exercise/CKM_SHA256_RSA_PKCS')!;
    expect(c.status).toBe('unsupported');
    expect(c.reason).toMatch(/not offered \(not in C_GetMechanismList\)/);
    expect(c.details).toMatchObject({ offered: false });
    expect(report.mechanisms.some((m) => m.name === 'CKM_SHA256_RSA_PKCS')).toBe(false);
    expect(report.findings.filter((f) => f.kind === 'unadvertised')).toEqual([]);
    expect(report.cases.find((x) => x.case === 'CKM_SHA256_RSA_PKCS/rsa-2048')?.status).toBe('unsupported');
  });

  test('signing: an advertised C_Verify that is refused fails per mechanism; a verdict needs the mechanisms it names', () => {
    // The mechanisms the token offers (and signs with): each advertises CKF_VERIFY and refuses C_VerifyInit.
    const offered = report.cases.filter((x) => x.suite === 'signing' && !x.case.includes('/verify') && x.status === 'pass').map((x) => x.case);
    const verify = report.cases.filter((x) => x.suite === 'signing' && offered.map((c) => `verify/${c}`).includes(x.case));
    expect(verify.length).toBeGreaterThan(0);
    for (const c of verify) {
      expect(c.status, c.case).toBe('fail');
      expect(c.ckr?.name, c.case).toBe('CKR_FUNCTION_NOT_SUPPORTED');
    }
    expect(report.capabilities['verify:CKM_ECDSA/ec-p256']).toBe(false);
    expect(report.capabilities['sign:CKM_ECDSA/ec-p256']).toBe(true);
  });

  test('CKR_FUNCTION_NOT_SUPPORTED from C_SetAttributeValue or C_CreateObject is a capability answer: unsupported, not fail', () => {
    for (const name of ['set-label', 'create-object/public', 'create-object/private']) {
      const c = report.cases.find((x) => x.suite === 'keygen' && x.case === name)!;
      expect(c.status, name).toBe('unsupported');
      expect(c.ckr?.name, name).toBe('CKR_FUNCTION_NOT_SUPPORTED');
    }
    expect(report.capabilities['set-label']).toBe(false);
    expect(report.capabilities['create-object']).toBe(false);
  });
});
