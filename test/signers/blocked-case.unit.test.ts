/**
 * A signers case that never ran (blocked after the session was lost for good, as on an emulated SmartCard-HSM when
 * pcscd reset the card under the harness) has no record; its `after` hook must leave the suite running, so that
 * the cases after it and the cleanup check still report (it aborted the suite with a TypeError before).
 */
import { describe, expect, test } from 'vitest';
import { signersSuite } from '../../suites/signers/index.js';

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
