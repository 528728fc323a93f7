/**
 * End to end: the built CLI runs the signing and DNSSEC suites on real SoftHSM, in-process and through
 * p11-kit. Every signature is checked by node:crypto and every zone by the real ldns-verify-zone inside
 * the suites; here we check that those checks ran and passed, and that what the token lacks is reported
 * as unsupported with its reason (rebuild dist/ with `npx tsc -p .` first).
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DriverReport, RunResults } from '../../src/results.js';
import { renderCapabilities } from '../../src/reports/capabilities.js';
import { renderHtml } from '../../src/reports/html.js';

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');
const DRIVERS = ['softhsm', 'softhsm-p11kit'];

describe('hsm-harness run --suite signing --suite dnssec on SoftHSM', () => {
  let results: RunResults;
  let code = 0;
  const driver = (id: string): DriverReport => results.drivers.find((d) => d.id === id)!;
  const find = (id: string, suite: string, name: string) => driver(id).cases.find((c) => c.suite === suite && c.case === name);

  beforeAll(async () => {
    const out = await mkdtemp(join(tmpdir(), 'hh-signing-'));
    try {
      await exec('node', [CLI, 'run', ...DRIVERS.flatMap((d) => ['--driver', d]), '--suite', 'signing', '--suite', 'dnssec', '--out', out]);
    } catch (err) {
      code = (err as { code?: number }).code ?? -1;
    }
    results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
    await rm(out, { recursive: true, force: true });
  }, 600_000); // a hang guard: signing now verifies per mechanism and key on two paths

  test('the run passed: no case failed, crashed or timed out, and the token was left as found', () => {
    expect(code).toBe(0);
    for (const id of DRIVERS) {
      const d = driver(id);
      expect(d.status).toBe('ran');
      expect(d.cases.filter((c) => !['pass', 'unsupported'].includes(c.status)).map((c) => `${c.suite}/${c.case}: ${c.status} ${c.reason ?? ''}`)).toEqual([]);
      expect(find(id, 'cleanup', 'objects-restored')?.status).toBe('pass');
      expect(d.findings.filter((f) => f.kind === 'deviation')).toEqual([]);
    }
  });

  test('the mechanisms DNSSEC signers need were exercised and verified on both paths', () => {
    for (const id of DRIVERS) {
      for (const name of [
        'CKM_RSA_PKCS/rsa-2048',
        'CKM_SHA256_RSA_PKCS/rsa-2048',
        'CKM_RSA_PKCS_PSS/rsa-2048',
        'CKM_ECDSA/ec-p256',
        'CKM_ECDSA/ec-p384',
        'CKM_ECDSA/ec-p521',
        'multipart/CKM_SHA256_RSA_PKCS/rsa-2048',
        'verify/CKM_RSA_PKCS/rsa-2048',
        'verify/CKM_SHA256_RSA_PKCS/rsa-2048',
        'verify/CKM_ECDSA/ec-p256',
        'verify/CKM_ECDSA/ec-p521',
      ]) {
        expect(find(id, 'signing', name)?.status, `${id} ${name}`).toBe('pass');
      }
      const caps = driver(id).capabilities;
      expect(caps['sign:CKM_RSA_PKCS']).toBe(true);
      expect(caps['sign:CKM_ECDSA']).toBe(true);
      expect(caps['ecdsa-raw-signature']).toBe(true);
      expect(caps['multipart-sign']).toBe(true);
      expect(caps['verify:CKM_ECDSA']).toBe(true);
      expect(caps['verify:CKM_ECDSA/ec-p384']).toBe(true);
      expect(caps['sign:CKM_ECDSA/ec-p521']).toBe(true);
      // Raw r‖s of exactly 2 × 66 bytes, 300 times over, for P-521.
      const p521 = find(id, 'signing', 'ecdsa-length/ec-p521')!;
      expect(p521.status).toBe('pass');
      expect(p521.details?.signatures).toBe(300);
      expect(find(id, 'signing', 'CKM_ECDSA/ec-p521')?.details?.signatureBytes).toBe(132);
    }
  });

  test('ldns-verify-zone accepted token-signed zones for RSASHA256/512 and ECDSA P-256/P-384 on both paths', () => {
    for (const id of DRIVERS) {
      for (const [name, alg] of [
        ['RSASHA256', 8],
        ['RSASHA512', 10],
        ['ECDSAP256SHA256', 13],
        ['ECDSAP384SHA384', 14],
      ] as const) {
        const c = find(id, 'dnssec', name)!;
        expect(c.status, `${id} ${name}: ${c.reason ?? ''}`).toBe('pass');
        expect(c.details?.ldns).toMatch(/verified/);
        expect(c.details?.signatures).toBeGreaterThanOrEqual(5);
        expect(driver(id).capabilities[`dnssec:${alg}`]).toBe(true);
      }
    }
  });

  test('Ed25519 works in-process; through p11-kit it is unsupported, hidden by the RPC (a transport finding, not SoftHSM)', () => {
    expect(find('softhsm', 'signing', 'CKM_EDDSA/ed25519')?.status).toBe('pass');
    expect(find('softhsm', 'dnssec', 'ED25519')?.status).toBe('pass');
    expect(driver('softhsm').capabilities['dnssec:15']).toBe(true);
    expect(driver('softhsm').transport).toBeUndefined();
    for (const name of ['signing/CKM_EDDSA/ed25519', 'dnssec/ED25519']) {
      const [suite, ...rest] = name.split('/');
      const c = find('softhsm-p11kit', suite!, rest.join('/'))!;
      expect(c.status).toBe('unsupported');
      expect(c.reason).toMatch(/^CKM_E\w+ is hidden by p11-kit \d+\.\d+ RPC \(the token behind it offers it/);
    }
    const p11kit = driver('softhsm-p11kit');
    expect(p11kit.capabilities['dnssec:15']).toBe(false);
    // SoftHSM's own list (pkcs11-tool -M on the module the server loads) against what arrives through p11-kit.
    const t = p11kit.transport!;
    expect(t.name).toMatch(/^p11-kit \d+\.\d+ RPC$/);
    // Everything that arrives is on SoftHSM's own list, so what is hidden is exactly the difference.
    expect(t.through).toBeLessThan(t.direct);
    expect(t.hiddenMechanisms).toHaveLength(t.direct - t.through);
    expect(t.hiddenMechanisms).toEqual(expect.arrayContaining(['CKM_EDDSA', 'CKM_EC_EDWARDS_KEY_PAIR_GEN', 'CKM_AES_KEY_WRAP_PAD']));
    expect(t.hiddenCapabilities['dnssec:15']).toEqual(['CKM_EDDSA', 'CKM_EC_EDWARDS_KEY_PAIR_GEN']);
    expect(t.hiddenCapabilities['sign:CKM_EDDSA']).toEqual(['CKM_EDDSA']);
    expect(p11kit.findings.filter((f) => f.kind === 'transport')).toHaveLength(1);
    // The matrix cell says hidden, in capabilities.md and index.html.
    const md = renderCapabilities(results);
    expect(md).toMatch(/\| softhsm-p11kit \| PKCS#11 \| ran \|[^\n]*⊘/);
    expect(md).toMatch(/Hidden by p11-kit \d+\.\d+ RPC \(not missing from the token\): [^\n]*CKM_EDDSA/);
    expect(renderHtml(results)).toMatch(/<td class="hidden" title="hidden by p11-kit \d+\.\d+ RPC; the token behind it offers it">⊘<\/td>/);
  });
});
