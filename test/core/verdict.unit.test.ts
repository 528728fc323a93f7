/** How a suitability verdict is labelled in reports. */
import { expect, test } from 'vitest';
import { verdictLabel } from '../../src/results.js';

test('not tested vs not suitable: notes and caveats do not decide', () => {
  expect(verdictLabel({ signer: 'X', suitable: true, reasons: ['note: fixed CKA_ID'] })).toBe('suitable');
  expect(verdictLabel({ signer: 'X', suitable: false, reasons: ['not tested: sign:CKM_ECDSA', 'note: no EdDSA'] })).toBe('not tested');
  expect(verdictLabel({ signer: 'X', suitable: false, reasons: ['missing: C_Verify', 'not tested: sign:CKM_ECDSA'] })).toBe('not suitable');
  expect(verdictLabel({ signer: 'X', suitable: false, reasons: [] })).toBe('not suitable');
});
