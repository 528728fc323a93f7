/**
 * HSM_PKCS11_EPHEMERAL=1: the user declares the generic module's token a throwaway, and the destructive
 * checks (today the one wrong-PIN attempt) run on it; any other value is a usage error. Without it the
 * token is treated as a physical device (test/core/generic-module-secrets.slow.test.ts checks the skip).
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, makeSoftHsmToken, SOFTHSM_MODULE } from './helpers.js';
import type { RunResults } from '../../src/results.js';

const PIN = 'throwaway-pin-6c1e';
let token: { conf: string; dir: string };
let out: string;
beforeAll(async () => {
  token = await makeSoftHsmToken('throwaway', PIN);
  out = await mkdtemp(join(tmpdir(), 'hh-ephemeral-'));
});
afterAll(async () => {
  for (const d of [out, token?.dir]) if (d) await rm(d, { recursive: true, force: true });
});

const env = () => ({ HSM_PKCS11_MODULE: SOFTHSM_MODULE, HSM_PKCS11_TOKEN: 'throwaway', HSM_PKCS11_PIN: PIN, SOFTHSM2_CONF: token.conf });

describe('HSM_PKCS11_EPHEMERAL', () => {
  test('=1 allows the wrong-PIN attempt on the generic module, and the report says the token was declared throwaway', async () => {
    const r = await cli(['run', '--driver', 'pkcs11', '--suite', 'sessions', '--out', out], { ...env(), HSM_PKCS11_EPHEMERAL: '1' });
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
    const d = results.drivers[0]!;
    const wrongPin = d.cases.find((c) => c.suite === 'sessions' && c.case === 'wrong-pin');
    expect(wrongPin?.status).toBe('pass');
    expect(wrongPin?.ckr?.name).toMatch(/^CKR_PIN_INCORRECT$/);
    expect(d.availabilityReason).toContain('declared throwaway by HSM_PKCS11_EPHEMERAL=1');
    expect(d.info.throwaway).toMatch(/HSM_PKCS11_EPHEMERAL=1/);
    expect(r.code).toBe(0);
  });

  test('any other value is a usage error', async () => {
    const r = await cli(['run', '--driver', 'pkcs11', '--suite', 'sessions', '--out', join(out, 'never')], { ...env(), HSM_PKCS11_EPHEMERAL: 'yes' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/HSM_PKCS11_EPHEMERAL must be 1 .* or unset, got "yes"/);
  });
});
