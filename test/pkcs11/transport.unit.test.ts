/**
 * Transport findings, the pure parts: reading `pkcs11-tool -M` (OpenSC's listing, lines as SoftHSM 2.6 prints them
 * through OpenSC 0.23), which capabilities a hidden mechanism takes, the suitability reason that names the
 * transport, and `diff`, for which missing ↔ hidden by the transport is never a regression. Codes from the OASIS
 * pkcs11t.h.
 */
import { describe, expect, test } from 'vitest';
import { capabilityMechanisms, markHiddenCapabilities, notOfferedReason, parsePkcs11ToolMechanisms } from '../../src/pkcs11/transport.js';
import { emptyDriverReport, type DriverReport, type TransportReport } from '../../src/results.js';
import { diffRuns } from '../../src/fleet/diff.js';
import { verdictFor, type SignerProfile } from '../../suites/suitability.js';
import { runResultsOf } from '../core/helpers.js';

const PKCS11_TOOL_M = `Using slot 0 with a present token (0x1f2e3d4c)
Supported mechanisms:
  AES-KEY-WRAP, keySize={16,2147483648}, wrap, unwrap
  mechtype-0x210A, keySize={1,2147483648}, wrap, unwrap
  ECDSA, keySize={112,521}, sign, verify, EC F_P, EC OID, EC uncompressed
  EC-EDWARDS-KEY-PAIR-GEN, keySize={256,456}, generate_key_pair
  ECDSA-KEY-PAIR-GEN, keySize={112,521}, generate_key_pair, EC F_P, EC OID, EC uncompressed
  EDDSA, keySize={256,456}, sign, verify
  RSA-PKCS-PSS, keySize={512,16384}, sign, verify
  SHA-1-HMAC, keySize={20,512}, sign, verify
  NOT-A-MECHANISM-NAME, sign
`;

describe('pkcs11-tool -M', () => {
  test('names and mechtype-0x… become CKM codes; an unknown name is left out', () => {
    expect(parsePkcs11ToolMechanisms(PKCS11_TOOL_M)).toEqual([0x2109, 0x210a, 0x1041, 0x1055, 0x1040, 0x1057, 0x0d, 0x221]);
  });
});

function p11kitReport(capabilities: Record<string, boolean>, hidden: string[]): DriverReport {
  const d = emptyDriverReport('softhsm-p11kit', 'SoftHSM via p11-kit', 'pkcs11');
  d.available = true;
  d.status = 'ran';
  d.capabilities = capabilities;
  d.transport = { name: 'p11-kit 0.24 RPC', direct: 70, through: 36, hiddenMechanisms: hidden, hiddenCapabilities: {} };
  return d;
}

describe('hidden capabilities and reasons', () => {
  test('a capability recorded false that needs a hidden mechanism is hidden; one that works, or needs none of them, is not', () => {
    expect(capabilityMechanisms('dnssec:15')).toEqual([0x1057, 0x1055]);
    expect(capabilityMechanisms('sign:CKM_ECDSA/ec-p256')).toEqual([0x1041, 0x1040]);
    const d = p11kitReport({ 'keygen:ed25519': false, 'sign:CKM_EDDSA': false, 'sign:CKM_ECDSA': true, 'set-label': false, 'keygen:ec-p256': false }, [
      'CKM_EDDSA',
      'CKM_EC_EDWARDS_KEY_PAIR_GEN',
    ]);
    markHiddenCapabilities(d);
    expect(d.transport!.hiddenCapabilities).toEqual({ 'keygen:ed25519': ['CKM_EC_EDWARDS_KEY_PAIR_GEN'], 'sign:CKM_EDDSA': ['CKM_EDDSA'] });
    expect(notOfferedReason(d, 0x1057)).toMatch(/^CKM_EDDSA is hidden by p11-kit 0\.24 RPC \(the token behind it offers it/);
    expect(notOfferedReason(d, 0x1042)).toBe('token does not offer CKM_ECDSA_SHA1');
  });

  test('suitability names the transport, not the token', () => {
    const profile: SignerProfile = {
      id: 'x',
      signer: 'X',
      source: 'test',
      requirements: [{ need: 'Ed25519 signing', all: ['sign:CKM_EDDSA/ed25519'], source: 'test' }],
    };
    const transport: TransportReport = {
      name: 'p11-kit 0.24 RPC',
      direct: 70,
      through: 36,
      hiddenMechanisms: ['CKM_EDDSA'],
      hiddenCapabilities: { 'sign:CKM_EDDSA/ed25519': ['CKM_EDDSA'] },
    };
    const caps = { 'sign:CKM_EDDSA/ed25519': false };
    expect(verdictFor(profile, caps, transport).verdict).toEqual({
      signer: 'X',
      suitable: false,
      reasons: ['not suitable through p11-kit 0.24 RPC: hides CKM_EDDSA (Ed25519 signing; the token behind it offers it)'],
    });
    expect(verdictFor(profile, caps).verdict.reasons).toEqual(['missing: Ed25519 signing (sign:CKM_EDDSA/ed25519 = false)']);
  });
});

describe('diff', () => {
  const run = (d: DriverReport) => ({ file: 'results.json', id: 'r', bench: [], results: runResultsOf([d]) });
  test('missing → hidden by the transport: listed, not a regression; offered → missing still is one', () => {
    const before = p11kitReport({ 'sign:CKM_EDDSA': false }, []);
    before.mechanisms = [{ name: 'CKM_ECDSA', code: 0x1041, minKeySize: 256, maxKeySize: 521, flags: ['SIGN'] }];
    const after = p11kitReport({ 'sign:CKM_EDDSA': false }, ['CKM_EDDSA']);
    markHiddenCapabilities(after);
    const d = diffRuns(run(before), run(after));
    expect(d.changes.map((c) => [c.kind, c.key, c.old, c.new, c.regression])).toEqual([
      ['capability', 'sign:CKM_EDDSA', 'does not work', 'hidden by p11-kit 0.24 RPC', false],
      ['mechanism', 'CKM_ECDSA', 'offered', 'absent', true],
      ['mechanism', 'CKM_EDDSA', 'absent', 'hidden by p11-kit 0.24 RPC', false],
    ]);
    expect(diffRuns(run(after), run(before)).regressions).toBe(0);
  });
});
