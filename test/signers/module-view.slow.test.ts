/**
 * A real signer (ldns-signzone) on the generic URI driver over a SoftHSM module with two initialised tokens: the
 * signers suite's isolation record shows the one token p11-kit lists and the one slot pkcs11-spy saw C_GetSlotList
 * return, and the zone signs. Slow tier: a whole run (about 15 s on a loaded machine). The driver's view itself is
 * checked in seconds by module-view.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SoftHsmStore, SOFTHSM_MODULE, type SoftHsmToken } from '../../src/softhsm.js';
import type { DriverReport } from '../../src/results.js';
import type { SignersSectionData } from '../../suites/signers/types.js';
import { cli } from '../core/helpers.js';

let dir: string;
let two: SoftHsmStore;
let underTest: SoftHsmToken;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-module-view-run-'));
  two = await SoftHsmStore.create();
  await two.addToken('hh-view-other');
  underTest = await two.addToken('hh-view-test');
}, 60_000);

afterAll(async () => {
  await two?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the signers suite on a module with two initialised tokens', () => {
  test('a signer run on the two-token module sees one token and one slot, and signs', async () => {
    const out = join(dir, 'run');
    const r = await cli(['run', '--driver', 'pkcs11', '--suite', 'signers', '--case', 'ldns/ECDSAP256SHA256', '--out', out], {
      ...two.env,
      HSM_PKCS11_URI: `pkcs11:token=${underTest.label}?module-path=${SOFTHSM_MODULE}`,
      HSM_PKCS11_PIN: underTest.pin,
      HSM_PKCS11_EPHEMERAL: '1',
      HSM_SIGNERS: 'ldns',
      HSM_SIGNER_ZONE_SIZES: '0',
    });
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8').catch(() => '{"drivers":[]}')) as { drivers: DriverReport[] };
    const report = results.drivers.find((d) => d.id === 'pkcs11');
    expect(report, `no pkcs11 driver in results.json; stderr: ${r.stderr}`).toBeDefined();
    const isolation = (report!.sections.signers as SignersSectionData).isolation;
    expect(isolation.singleToken).toMatch(/exports only hh-view-test/);
    expect(isolation.tokensSeen).toEqual(['hh-view-test']);
    expect(isolation.slotsSeen).toBe(1);
    const c = report!.cases.find((x) => x.suite === 'signers' && x.case === 'ldns/ECDSAP256SHA256');
    expect(c?.status, c?.reason).toBe('pass');
    expect(r.stdout + r.stderr).not.toContain(underTest.pin);
  }, 120_000);
});
