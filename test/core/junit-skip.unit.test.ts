/**
 * junit.xml carries each skip's reason as <skipped message="…"> (what Jenkins, GitLab and the GitHub JUnit
 * actions show), escaped by the XML builder, with the skipped counts of the suite unchanged.
 */
import { describe, expect, test } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { renderJUnit } from '../../src/reports/junit.js';
import { runResultsOf } from './helpers.js';
import { emptyDriverReport } from '../../src/results.js';

describe('junit.xml skip messages', () => {
  test('skipped, unsupported and expected-fail cases carry their reason as the message, markup and quotes included', () => {
    const reason = 'needs <CKM_X> & "two" spare tokens';
    const d = emptyDriverReport('soft', 'Soft', 'pkcs11');
    Object.assign(d, {
      available: true,
      status: 'ran',
      cases: [
        { driver: 'soft', suite: 's', case: 'skipped', status: 'skip', durationMs: 1, reason },
        { driver: 'soft', suite: 's', case: 'unsupported', status: 'unsupported', durationMs: 1, reason },
        { driver: 'soft', suite: 's', case: 'passed', status: 'pass', durationMs: 1 },
      ],
    });
    const gone = emptyDriverReport('gone', 'Gone', 'pkcs11');
    gone.availabilityReason = 'HSM_PKCS11_MODULE is not set';
    const drivers = [d, gone];
    const results = runResultsOf(drivers);
    const xml = new XMLParser({ ignoreAttributes: false }).parse(renderJUnit(results));
    const [soft, unavailable] = [xml.testsuites.testsuite].flat();
    expect(soft['@_skipped']).toBe('2');
    const cases = [soft.testcase].flat();
    expect(cases[0].skipped['@_message']).toBe(reason);
    expect(cases[1].skipped['@_message']).toMatch(/needs <CKM_X> & "two" spare tokens$/);
    expect(cases[2].skipped).toBeUndefined();
    expect(unavailable.testcase.skipped['@_message']).toBe('unavailable: HSM_PKCS11_MODULE is not set');
  });
});
