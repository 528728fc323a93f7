/** Per-driver expectations: case patterns, and golden return codes compared with what a run observed. */
import { describe, expect, test } from 'vitest';
import { Expectations } from '../../src/expectations.js';

describe('expectations files', () => {
  const e = new Expectations({
    cases: { 'signing/CKM_EDDSA/ed25519': { status: 'unsupported', why: 'no EdDSA' }, 'dkek/kwp-*': { status: 'unsupported', why: 'no KWP' } },
    goldenCodes: { 'C_Login: wrong user PIN': 'CKR_PIN_INCORRECT', 'C_Sign: 10-byte output buffer': 'CKR_BUFFER_TOO_SMALL' },
  });

  test('exact keys and trailing-* patterns match; others do not', () => {
    expect(e.lookup('signing/CKM_EDDSA/ed25519')?.why).toBe('no EdDSA');
    expect(e.lookup('dkek/kwp-restore-ec')?.why).toBe('no KWP');
    expect(e.lookup('dkek/blob-restore-ec')).toBeUndefined();
    expect(e.lookup('signing/CKM_EDDSA')).toBeUndefined();
  });

  test('a changed code is a difference; a situation not tried this run is not', () => {
    expect(e.goldenDifferences({ 'C_Login: wrong user PIN': 'CKR_PIN_INCORRECT' })).toEqual([]);
    expect(e.goldenDifferences({ 'C_Sign: 10-byte output buffer': 'CKR_ARGUMENTS_BAD', 'C_Something new': 'CKR_OK' })).toEqual([
      { situation: 'C_Sign: 10-byte output buffer', golden: 'CKR_BUFFER_TOO_SMALL', observed: 'CKR_ARGUMENTS_BAD' },
    ]);
  });
});
