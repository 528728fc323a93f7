/**
 * Two promises in one real run:
 * - pointing HSM_PKCS11_MODULE at a module runs every PKCS#11 conformance suite through the generic
 *   `pkcs11` driver with no code change (here a SoftHSM token made independently with softhsm2-util;
 *   the benchmark is left out to keep the test short);
 * - canary PINs given to every driver never appear in stdout, stderr or any report file.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, makeSoftHsmToken, SOFTHSM_MODULE, type CliResult } from './helpers.js';
import type { RunResults } from '../../src/results.js';

const GENERIC_PIN = 'CANARY-generic-pin-5b2f07';
const SOFTHSM_PIN = 'CANARY-softhsm-pin-93ad1c';

describe('generic PKCS#11 module driver, with canary PINs', () => {
  let out: string;
  let r: CliResult;
  let results: RunResults;
  let tokenDir: string | undefined;
  beforeAll(async () => {
    const token = await makeSoftHsmToken('vendor-token', GENERIC_PIN);
    tokenDir = token.dir;
    out = await mkdtemp(join(tmpdir(), 'hh-generic-'));
    r = await cli(
      [
        'run',
        '--driver',
        'pkcs11',
        '--driver',
        'softhsm',
        '--suite',
        'discovery',
        '--suite',
        'keygen',
        '--suite',
        'signing',
        '--suite',
        'dnssec',
        '--suite',
        'sessions',
        '--suite',
        'dkek',
        '--suite',
        'suitability',
        '--out',
        out,
      ],
      {
        HSM_PKCS11_MODULE: SOFTHSM_MODULE,
        HSM_PKCS11_TOKEN: 'vendor-token',
        HSM_PKCS11_PIN: GENERIC_PIN,
        SOFTHSM2_CONF: token.conf,
        HSM_HARNESS_SOFTHSM_PIN: SOFTHSM_PIN,
      },
    );
    results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
  });
  afterAll(async () => {
    for (const d of [out, tokenDir]) if (d) await rm(d, { recursive: true, force: true });
  });

  test('the generic driver ran every conformance suite and nothing failed', () => {
    const d = results.drivers.find((x) => x.id === 'pkcs11')!;
    expect(d.status).toBe('ran');
    expect(d.availabilityReason).toContain(SOFTHSM_MODULE);
    const bad = d.cases.filter((c) => c.status === 'fail' || c.status === 'crash' || c.status === 'timeout');
    expect(bad).toEqual([]);
    for (const suite of ['discovery', 'keygen', 'signing', 'dnssec', 'sessions']) {
      expect(
        d.cases.some((c) => c.suite === suite && c.status === 'pass'),
        `a passing ${suite} case`,
      ).toBe(true);
    }
    // The token-to-token round trip needs a second, throwaway token, which an operator's module does not have.
    for (const c of d.cases.filter((x) => x.suite === 'dkek' && x.status !== 'pass')) expect(c.reason, c.case).toBeTruthy();
    expect(d.suitability.length).toBeGreaterThan(0);
    // A physical-looking token: the wrong-PIN case must not have been tried without HSM_ALLOW_WRONG_PIN.
    // (The sessions suite always records the case, so a missing one is a failure too, not a pass.)
    expect(d.cases.find((c) => c.suite === 'sessions' && c.case === 'wrong-pin')?.status).toBe('skip');
    expect(d.cases.find((c) => c.suite === 'cleanup')?.status).toBe('pass');
    expect(r.code).toBe(0);
  });

  test('no canary PIN appears in stdout, stderr or any report', async () => {
    const texts: [string, string][] = [
      ['stdout', r.stdout],
      ['stderr', r.stderr],
    ];
    for (const f of await readdir(out)) texts.push([f, await readFile(join(out, f), 'latin1')]);
    expect(texts.length).toBeGreaterThanOrEqual(5);
    for (const [where, text] of texts) {
      for (const canary of [GENERIC_PIN, SOFTHSM_PIN, 'CANARY-']) {
        expect(text.includes(canary), `${canary} found in ${where}`).toBe(false);
      }
      // Masking is only the safety net: had any code path printed a PIN, the mask would show here.
      expect(text.includes('***'), `a masked secret in ${where}: something tried to print a PIN`).toBe(false);
    }
  });
});
