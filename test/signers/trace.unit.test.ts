/**
 * Pure parts of the signers suite: the pkcs11-spy log parser keeps function and mechanism names only (never the
 * PIN it logs), the profile check names both directions of disagreement, and a run's cases become a verdict.
 */
import { describe, expect, test } from 'vitest';
import { parseSpyLog } from '../../src/signers/trace.js';
import { checkProfile, type SignerSection } from '../../suites/signers/index.js';
import { verdictFromRun } from '../../suites/suitability.js';
import { basisLabel, verdictLabel } from '../../src/results.js';

// The shape of OpenSC 0.23 pkcs11-spy output (function header, [in]/[out] lines), PIN included as the spy writes it.
const LOG = `
*************** OpenSC PKCS#11 spy *****************
Loaded: "/usr/lib/softhsm/libsofthsm2.so"

0: C_GetInterface
P:1; T:0x1 2026-12-07 14:16:16.001
[in] pInterfaceName 000055856b6b2e45 / 7
Returned:  0 CKR_OK

8: C_Login
P:1; T:0x1 2026-12-07 14:16:16.100
[in] hSession = 0x1
[in] userType = CKU_USER
[in] pPin[ulPinLen] 00007ffd1c2a1b40 / 15
    00000000  43 61 6E 61 72 79 2D 50 49 4E 2D 37 37 33 31     Canary-PIN-7731
Returned:  0 CKR_OK

12: C_SignInit
[in] hSession = 0x1
[in] pMechanism->type = CKM_ECDSA
[in] hKey = 0x2
Returned:  0 CKR_OK

13: C_Sign
Returned:  0 CKR_OK

14: C_GenerateKeyPair
[in] pMechanism->type = 0x00001055
Returned:  0 CKR_OK

15: C_GetMechanismInfo
[in] slotID = 0x1
[in] type = CKM_RSA_PKCS_PSS
Returned:  0 CKR_OK
`;

describe('pkcs11-spy log', () => {
  const t = parseSpyLog(LOG);
  test('function calls and the mechanism of each call are counted by name', () => {
    expect(t.functions).toEqual({ C_GetInterface: 1, C_Login: 1, C_SignInit: 1, C_Sign: 1, C_GenerateKeyPair: 1, C_GetMechanismInfo: 1 });
    // 0x1055 is CKM_EC_EDWARDS_KEY_PAIR_GEN (PKCS#11 3.0 pkcs11t.h), which this spy version prints as hex.
    expect(t.mechanisms).toEqual({
      'C_SignInit CKM_ECDSA': 1,
      'C_GenerateKeyPair CKM_EC_EDWARDS_KEY_PAIR_GEN': 1,
      'C_GetMechanismInfo CKM_RSA_PKCS_PSS': 1,
    });
  });
  test('nothing but names leaves the parser: not the PIN, in any form', () => {
    const out = JSON.stringify(t);
    expect(out).not.toContain('Canary');
    expect(out).not.toMatch(/43 61 6E/i);
  });
});

describe('profile against the trace', () => {
  test('listed but never called, and called but not listed; session housekeeping need not be listed', () => {
    const check = checkProfile(
      { functions: ['C_Login', 'C_Sign', 'C_SignInit', 'C_Digest'], mechanisms: ['CKM_ECDSA', 'CKM_RSA_PKCS'], source: 'x' },
      parseSpyLog(LOG),
    );
    expect(check!.listedNotCalled).toEqual(['CKM_RSA_PKCS', 'C_Digest']);
    expect(check!.calledNotListed).toEqual(['CKM_EC_EDWARDS_KEY_PAIR_GEN', 'CKM_RSA_PKCS_PSS', 'C_GenerateKeyPair', 'C_GetMechanismInfo']);
  });
});

describe('a verdict from a run', () => {
  const run = (cases: SignerSection['cases']): SignerSection => ({
    id: 'x',
    title: 'X',
    version: 'X 1.0',
    claims: { algorithms: [8], source: '' },
    cases,
    exposures: [],
  });
  const date = '2026-12-07T14:00:00.000Z';
  test('suitable when one algorithm signed as packaged; the failures are notes then', () => {
    const v = verdictFromRun(
      'X',
      run([
        { case: 'x/RSASHA256', algorithm: 8, status: 'pass', keys: 'made-by-signer' },
        { case: 'x/ED25519', algorithm: 15, status: 'fail' },
      ]),
      date,
    )!;
    expect(verdictLabel(v)).toBe('suitable');
    expect(basisLabel(v)).toBe('proven by run (X 1.0, 2026-12-07)');
    expect(v.reasons).toEqual(['note: RSASHA256 signs', 'note: ED25519 fail as packaged']);
  });
  test('a pass only with a workaround does not make the signer suitable as packaged', () => {
    const v = verdictFromRun(
      'X',
      run([
        { case: 'x/ECDSAP256SHA256', algorithm: 13, status: 'fail' },
        { case: 'x/ECDSAP256SHA256/workaround-w', algorithm: 13, status: 'pass', workaround: 'w' },
      ]),
      date,
    )!;
    expect(verdictLabel(v)).toBe('not suitable');
    expect(v.reasons).toContain('note: ECDSAP256SHA256/workaround-w signs only with this workaround');
  });
  test('a signer that did not run gives no run verdict', () => {
    expect(verdictFromRun('X', { ...run([{ case: 'x/RSASHA256', algorithm: 8, status: 'skip' }]) }, date)).toBeUndefined();
  });
});
