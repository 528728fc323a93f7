/**
 * HSM_ALLOW_WRONG_PIN=1 lets the sessions suite make its one wrong-PIN attempt on a token the harness
 * treats as physical. The flag's value must not be mistaken for a secret (that once masked every "1" in
 * the reports and broke results.json).
 */
import { describe, expect, test } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, makeSoftHsmToken, SOFTHSM_MODULE } from './helpers.js';
import type { RunResults } from '../../src/results.js';

describe('HSM_ALLOW_WRONG_PIN=1 on the generic driver', () => {
  test('the wrong-PIN case runs, gets CKR_PIN_INCORRECT, and the reports stay valid', async () => {
    const token = await makeSoftHsmToken('allow-wrong-pin', 'right-pin-31337');
    const out = await mkdtemp(join(tmpdir(), 'hh-wrongpin-'));
    try {
      const r = await cli(['run', '--driver', 'pkcs11', '--suite', 'sessions', '--out', out], {
        HSM_PKCS11_MODULE: SOFTHSM_MODULE,
        HSM_PKCS11_TOKEN: 'allow-wrong-pin',
        HSM_PKCS11_PIN: 'right-pin-31337',
        SOFTHSM2_CONF: token.conf,
        HSM_ALLOW_WRONG_PIN: '1',
      });
      expect(r.code, r.stderr).toBe(0);
      const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
      expect(results.schemaVersion).toBe(2);
      const wrongPin = results.drivers[0]!.cases.find((c) => c.case === 'wrong-pin')!;
      expect(wrongPin.status).toBe('pass');
      expect(wrongPin.ckr?.name).toBe('CKR_PIN_INCORRECT');
    } finally {
      await rm(out, { recursive: true, force: true });
      await rm(token.dir, { recursive: true, force: true });
    }
  });
});
