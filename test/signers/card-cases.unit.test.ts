/**
 * A signers case that never ran (blocked after the session was lost for good, as on an emulated SmartCard-HSM when
 * pcscd reset the card under the harness) has no record; its `after` hook must leave the suite running, so that
 * the cases after it and the cleanup check still report (it aborted the suite with a TypeError before). And the name
 * by which the suite tells the objects a signer made from those that were there before: on a card the module is
 * reinitialised around each signer, so a name built from a handle made OpenSC's profile object look new every time.
 */
import { describe, expect, test } from 'vitest';
import { objectKey, signersSuite } from '../../suites/signers/index.js';

describe('signers: after-hooks of cases that did not run', () => {
  test('every case, as-packaged and workaround, tolerates the absence of its record', () => {
    const state = { records: new Map() } as unknown as Parameters<NonNullable<(typeof signersSuite.cases)[number]['after']>>[1];
    const withAfter = signersSuite.cases.filter((c) => c.after);
    expect(withAfter.map((c) => c.name)).toContain('bind/RSASHA256/workaround-no-deepbind');
    for (const c of withAfter) expect(() => c.after!('skip', state, {} as never), c.name).not.toThrow();
  });

  test('a case that ran gets its final status', () => {
    const record = { case: 'knot/RSASHA256', algorithm: 8, status: 'skip' };
    const state = { records: new Map([['knot/RSASHA256', record]]) } as unknown as Parameters<NonNullable<(typeof signersSuite.cases)[number]['after']>>[1];
    signersSuite.cases.find((c) => c.name === 'knot/RSASHA256')!.after!('fail', state, {} as never);
    expect(record.status).toBe('fail');
  });
});

describe('signers: the name that tells a signer-made object from one that was there before', () => {
  const CKA_CLASS = 0x0;
  const CKA_LABEL = 0x3;
  const CKA_ID = 0x102;
  const reader = (attrs: Record<number, Buffer | number>) => ({
    ulong: (t: number) => {
      if (typeof attrs[t] !== 'number') throw new Error('CKR_ATTRIBUTE_TYPE_INVALID');
      return attrs[t] as number;
    },
    bytes: (t: number) => {
      if (!Buffer.isBuffer(attrs[t])) throw new Error('CKR_ATTRIBUTE_TYPE_INVALID');
      return attrs[t] as Buffer;
    },
  });

  test('an object without CKA_ID (an OpenSC profile object) gets a name from what it has, never its handle', () => {
    // CKO_PROFILE (PKCS #11 3.0) is 0x9; the same object read through two module instances has two handles, one name.
    expect(objectKey(reader({ [CKA_CLASS]: 0x9 }))).toBe('9|-|-');
  });

  test('class, CKA_ID and label make the name; any difference makes another object', () => {
    const key = objectKey(reader({ [CKA_CLASS]: 3, [CKA_ID]: Buffer.from('0102', 'hex'), [CKA_LABEL]: Buffer.from('k') }));
    expect(key).toBe(`3|0102|${Buffer.from('k').toString('hex')}`);
    expect(objectKey(reader({ [CKA_CLASS]: 2, [CKA_ID]: Buffer.from('0102', 'hex'), [CKA_LABEL]: Buffer.from('k') }))).not.toBe(key);
  });

  test("an object whose class cannot be read has no name (the suite never counts it as the signer's)", () => {
    expect(objectKey(reader({}))).toBeUndefined();
  });
});
