/**
 * The signers suite with the real signers on SoftHSM (Knot and ldns: the fast ones every machine has after set-up).
 * Expected outcomes are the ones observed by hand on SoftHSM 2.6.1 and written down in issue 20 (Knot signs
 * RSASHA256 and ECDSAP256SHA256 with keys it makes; its Ed25519 key generation fails and it signs with a key
 * made elsewhere; ldns signs RSA and ECDSA, and refuses algorithm 15), not from the suite's own code.
 * A shim that corrupts signatures must make every signed zone fail verification; a module that crashes the
 * signer must give `fail` naming the signal while the rest of the run completes; no PIN in any output.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CaseRecord, DriverReport } from '../../src/results.js';
import type { SoftHsmStore } from '../../src/softhsm.js';
import type { SignersSectionData } from '../../suites/signers/index.js';
import { cli, shimOverSoftHsm } from '../core/helpers.js';

const PIN = 'Canary-PIN-7731';
let dir: string;
const stores: SoftHsmStore[] = [];

async function run(out: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; report: DriverReport; files: string[] }> {
  const r = await cli(['run', ...args, '--suite', 'signers', '--out', out], env, { timeoutMs: 240_000 });
  const report = (JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as { drivers: DriverReport[] }).drivers[0]!;
  const files = await Promise.all((await readdir(out)).map((f) => readFile(join(out, f), 'utf8').catch(() => '')));
  return { code: r.code, report, files: [...files, r.stdout, r.stderr] };
}

function cases(report: DriverReport): Record<string, CaseRecord> {
  return Object.fromEntries(report.cases.filter((c) => c.suite === 'signers').map((c) => [c.case, c]));
}

let plain: Awaited<ReturnType<typeof run>>;
let corrupt: Awaited<ReturnType<typeof run>>;
let crash: Awaited<ReturnType<typeof run>>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-signers-'));
  plain = await run(join(dir, 'plain'), ['--driver', 'softhsm'], {
    HSM_SIGNERS: 'knot,ldns',
    HSM_HARNESS_SOFTHSM_PIN: PIN,
    // A small zone size exercises the speed figures without the minutes of the full 1,000/10,000 bench.
    HSM_SIGNER_ZONE_SIZES: '200',
  });
  const flip = await shimOverSoftHsm('pkcs11/corrupting-shim.c', dir, 'hh-signers-flip', { SHIM_SIGN: 'flip' });
  stores.push(flip.store);
  corrupt = await run(join(dir, 'corrupt'), ['--driver', 'pkcs11'], { ...flip.env, HSM_SIGNERS: 'knot,ldns', HSM_SIGNER_ZONE_SIZES: '0' });
  const segv = await shimOverSoftHsm('pkcs11/corrupting-shim.c', join(dir), 'hh-signers-crash', { SHIM_SIGN: 'crash' });
  stores.push(segv.store);
  crash = await run(join(dir, 'crash'), ['--driver', 'pkcs11'], { ...segv.env, HSM_SIGNERS: 'ldns', HSM_SIGNER_ZONE_SIZES: '0' });
}, 600_000);

afterAll(async () => {
  for (const s of stores) await s.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('signers on SoftHSM in-process', () => {
  test("Knot and ldns agree with issue 20's table", () => {
    const c = cases(plain.report);
    for (const alg of ['RSASHA256', 'ECDSAP256SHA256']) {
      expect(c[`knot/${alg}`]).toMatchObject({ status: 'pass', details: { keys: 'made by the signer on the token' } });
      expect(c[`ldns/${alg}`]).toMatchObject({ status: 'pass', details: { keys: 'signed with a key made by the harness' } });
    }
    // Knot: Ed25519 key generation fails, and it signs with a key made elsewhere.
    expect(c['knot/ED25519']).toMatchObject({ status: 'pass', details: { keys: 'signed with a key made by the harness' } });
    expect(String(c['knot/ED25519']!.details!['signer keygen'])).toMatch(/key generation error/);
    expect(c['ldns/ED25519']).toMatchObject({ status: 'fail', reason: expect.stringMatching(/Algorithm 15 cannot be used for signing/) });
  });

  test('both verifications ran on every zone that was signed', () => {
    for (const k of Object.values(cases(plain.report)).filter((x) => x.status === 'pass')) {
      expect(k.details!['ldns-verify-zone']).toBe('Zone is verified and complete');
      const m = /^(\d+) of (\d+) verified/.exec(String(k.details!.rrsigs));
      expect(m && m[1] === m[2] && Number(m[1]) > 20, `${k.case}: ${k.details!.rrsigs}`).toBe(true);
    }
  });

  test('results.json has the PKCS#11 calls each signer made, as pkcs11-spy saw them', () => {
    const s = plain.report.sections.signers as SignersSectionData;
    const knot = s.signers.find((x) => x.id === 'knot')!;
    // Issue 20: Knot (GnuTLS) calls C_Sign twice per signature, and passes CKM_EDDSA to C_GenerateKeyPair.
    expect(knot.observed!.functions.C_Sign).toBe(2 * knot.observed!.functions.C_SignInit!);
    expect(knot.observed!.mechanisms['C_GenerateKeyPair CKM_EDDSA']).toBeGreaterThan(0);
    expect(knot.profileCheck).toBeDefined();
    const ldns = s.signers.find((x) => x.id === 'ldns')!;
    expect(ldns.observed!.mechanisms['C_SignInit CKM_ECDSA']).toBeGreaterThan(0);
    expect(ldns.observed!.functions.C_GenerateKeyPair).toBeUndefined();
  });

  test('zone-signing speed: RRSIGs per second for the generated zone, on every algorithm that signed', () => {
    const s = plain.report.sections.signers as SignersSectionData;
    for (const c of s.signers.flatMap((x) => x.cases).filter((x) => x.status === 'pass')) {
      const f = c.speed?.[0];
      // 200 records on their own names plus the apex: one RRSIG per RRset and one per NSEC, at least 2 × 202.
      expect(f, c.case).toMatchObject({ records: 200 });
      expect(f!.rrsigs, c.case).toBeGreaterThanOrEqual(404);
      expect(Math.abs(f!.rrsigsPerSecond / (f!.rrsigs / f!.seconds) - 1), c.case).toBeLessThan(0.05);
    }
  });

  test('each signer saw only the module under test (p11-kit registers opensc-pkcs11 system-wide)', () => {
    const s = plain.report.sections.signers as SignersSectionData;
    if (process.getuid?.() !== 0) return;
    expect(s.isolation.isolated).toBe(true);
    expect(s.isolation.modulesSeen).toEqual(['hsm-harness-token']);
  });

  test('no PIN in any output, and nothing left on the token', () => {
    for (const text of plain.files) expect(text).not.toContain(PIN);
    expect(plain.report.cases.find((c) => c.suite === 'cleanup')?.status).toBe('pass');
  });
});

describe('signers on a module that corrupts every signature', () => {
  test('every zone a signer produced fails verification', () => {
    const c = cases(corrupt.report);
    for (const name of ['knot/RSASHA256', 'knot/ECDSAP256SHA256', 'ldns/RSASHA256', 'ldns/ECDSAP256SHA256']) {
      expect(c[name], name).toMatchObject({ status: 'fail', reason: expect.stringMatching(/^verification: /) });
    }
    expect(Object.values(c).filter((x) => x.status === 'pass')).toEqual([]);
    expect(corrupt.code).toBe(1);
  });
});

describe('a module that crashes the signer', () => {
  test('the signer case fails naming the signal, and the rest of the run completes', () => {
    const c = cases(crash.report);
    expect(c['ldns/RSASHA256']).toMatchObject({ status: 'fail', reason: expect.stringMatching(/SIGSEGV/) });
    expect(c['ldns/ECDSAP256SHA256']).toMatchObject({ status: 'fail', reason: expect.stringMatching(/SIGSEGV/) });
    expect(Object.keys(c)).toHaveLength(5);
    expect(crash.report.status).toBe('ran');
    expect(crash.report.cases.find((x) => x.suite === 'cleanup')?.status).toBe('pass');
  });
});
