/**
 * The status model's "expected" part: expectations entries apply only on a match, unexpected passes and stale or
 * unknown entries are reported, documents are unverified, a bad entry is a usage error; golden return codes.
 */
import { describe, expect, test } from 'vitest';
import { Expectations, auditProblems, type ExpectationsFile } from '../../src/expectations.js';
import { UsageError } from '../../src/errors.js';
import { caseFailsRun, emptyDriverReport, runPassed, statusLabel, type CaseRecord, type CaseStatus, type RunResults } from '../../src/results.js';
import { makeContext } from '../../src/runner/context.js';
import { runCaseTable } from '../../src/runner/cases.js';
import { expectationsCheck } from '../../suites/checks.js';
import { runResultsOf } from './helpers.js';

const DOC = { kind: 'document' as const, ref: 'https://example.org/manual' };
const RUN = { kind: 'run' as const, ref: 'hsm-harness run on 2026-11-30' };
const file: ExpectationsFile = {
  cases: {
    'signing/CKM_EDDSA/ed25519': { status: 'unsupported', code: 'CKR_MECHANISM_INVALID', why: 'no EdDSA', source: RUN },
    'dkek/kwp-*': { status: 'unsupported', message: 'C_WrapKey', why: 'no KWP', source: DOC },
    'keygen/set-label': { status: 'fail', code: 'CKR_GENERAL_ERROR', why: 'firmware bug', source: RUN },
    'keygen/no-such-case': { status: 'unsupported', message: 'x', why: 'typo', source: RUN },
    'kmip/baseline/locate': { status: 'unsupported', message: 'x', why: 'suite not run', source: DOC },
  },
  goldenCodes: { 'C_Login: wrong user PIN': 'CKR_PIN_INCORRECT', 'C_Sign: 10-byte output buffer': 'CKR_BUFFER_TOO_SMALL' },
};
const rec = (suite: string, name: string, status: CaseStatus, extra: Partial<CaseRecord> = {}): CaseRecord => ({
  driver: 'd',
  suite,
  case: name,
  status,
  durationMs: 1,
  ...extra,
});
const ckr = (name: string) => ({ code: 1, name });

describe('expectations files', () => {
  test('exact keys and trailing-* patterns match; others do not', () => {
    const e = new Expectations(file);
    expect(e.lookup('signing/CKM_EDDSA/ed25519')?.why).toBe('no EdDSA');
    expect(e.lookup('dkek/kwp-restore-ec')?.why).toBe('no KWP');
    expect(e.lookup('dkek/blob-restore-ec')).toBeUndefined();
    expect(e.lookup('signing/CKM_EDDSA')).toBeUndefined();
  });

  test('an entry applies only when status and code/message match the observed outcome', () => {
    const e = new Expectations(file);
    // A fail with the stated code becomes the expected unsupported, labelled with its source.
    const match = rec('signing', 'CKM_EDDSA/ed25519', 'fail', { ckr: ckr('CKR_MECHANISM_INVALID'), reason: 'CKR_MECHANISM_INVALID' });
    e.apply('signing/CKM_EDDSA/ed25519', match);
    expect(match).toMatchObject({ status: 'unsupported', expected: { status: 'unsupported', verified: true } });
    expect(match.reason).toMatch(/^expected: no EdDSA \(observed: CKR_MECHANISM_INVALID\)$/);
    // Another code: the entry does not apply, and the failure stays a failure.
    const other = rec('dkek', 'kwp-restore-ec', 'fail', { reason: 'the restored key does not sign' });
    e.apply('dkek/kwp-restore-ec', other);
    expect(other.status).toBe('fail');
    expect(other.expected).toBeUndefined();
    // An expected fail stays `fail`, but does not fail the run.
    const known = rec('keygen', 'set-label', 'fail', { ckr: ckr('CKR_GENERAL_ERROR'), reason: 'C_SetAttributeValue failed' });
    e.apply('keygen/set-label', known);
    expect(known.status).toBe('fail');
    expect(statusLabel(known)).toBe('fail (expected)');
    expect(caseFailsRun(known)).toBe(false);
    expect(caseFailsRun(other)).toBe(true);
  });

  test('a document entry is unverified until a run confirms it', () => {
    const e = new Expectations(file);
    const r = rec('dkek', 'kwp-restore-rsa', 'unsupported', { reason: 'C_WrapKey returned CKR_MECHANISM_INVALID' });
    e.apply('dkek/kwp-restore-rsa', r);
    expect(r.expected).toMatchObject({ verified: false, source: DOC });
    expect(statusLabel(r)).toBe('unsupported (expected, unverified)');
    expect(r.reason).toMatch(/^expected \(unverified: from a document\): no KWP/);
    const a = e.audit(new Set(['dkek', 'kmip']));
    expect(a.confirmed).toEqual(['dkek/kwp-*']);
    expect(a.unverified).toEqual(['kmip/baseline/locate']);
  });

  test('unexpected passes, stale entries and entries naming no case are reported; suites that did not run are not judged', () => {
    const e = new Expectations(file);
    const passed = rec('signing', 'CKM_EDDSA/ed25519', 'pass');
    e.apply('signing/CKM_EDDSA/ed25519', passed);
    expect(passed.unexpectedPass).toBe(true);
    expect(statusLabel(passed)).toBe('pass (unexpected)');
    const changed = rec('keygen', 'set-label', 'unsupported', { ckr: ckr('CKR_FUNCTION_NOT_SUPPORTED'), reason: 'CKR_FUNCTION_NOT_SUPPORTED' });
    e.apply('keygen/set-label', changed);
    expect(changed.expected).toBeUndefined();
    const skipped = rec('dkek', 'kwp-restore-ec', 'skip', { reason: 'no spare token' });
    e.apply('dkek/kwp-restore-ec', skipped);
    const a = e.audit(new Set(['signing', 'keygen', 'dkek']));
    expect(a.unexpectedPasses).toEqual(['signing/CKM_EDDSA/ed25519']);
    expect(a.stale.map((s) => s.key)).toEqual(['keygen/set-label']);
    expect(a.unknown).toEqual(['keygen/no-such-case']);
    expect(auditProblems(a)).toHaveLength(3);
  });

  test('an entry for a table case this run did not select is not a problem; one that ran and did not match is stale', () => {
    const why = { why: 'w', source: RUN } as const;
    const e = new Expectations({
      cases: {
        'signers/bind/RSASHA512': { status: 'fail', message: 'SIGABRT', ...why },
        'signers/bind/RSASHA256/workaround-*': { status: 'fail', message: 'PIN', ...why },
        'signers/ldns/ED25519': { status: 'fail', message: 'Algorithm 15', ...why },
        'signers/knot/RSASHA9': { status: 'fail', message: 'x', ...why },
      },
    });
    e.apply('signers/ldns/ED25519', rec('signers', 'ldns/ED25519', 'fail', { reason: 'exit 1: something else' }));
    const table = new Set(['signers/bind/RSASHA512', 'signers/bind/RSASHA256/workaround-no-deepbind', 'signers/ldns/ED25519', 'signers/knot/RSASHA256']);
    const a = e.audit(new Set(['signers']), table);
    expect(a.notRun).toEqual(['signers/bind/RSASHA512', 'signers/bind/RSASHA256/workaround-*']);
    expect(a.unknown).toEqual(['signers/knot/RSASHA9']);
    expect(a.stale.map((s) => s.key)).toEqual(['signers/ldns/ED25519']);
    expect(auditProblems(a)).toHaveLength(2);
  });

  test('an entry without status, pattern or source is bad input, named with its file', () => {
    const bad = (entry: object) => () => new Expectations({ cases: { 'x/y': entry as never } }, 'drivers/t.expect.json');
    expect(bad({ status: 'unsupported', why: 'w', source: RUN })).toThrow(UsageError);
    expect(bad({ status: 'unsupported', why: 'w', source: RUN })).toThrow(/drivers\/t\.expect\.json: entry "x\/y" states neither/);
    expect(bad({ status: 'skip', code: 'CKR_OK', why: 'w', source: RUN })).toThrow(/status "skip"/);
    expect(bad({ status: 'fail', code: 'CKR_OK', why: 'w' })).toThrow(/needs a source/);
    expect(bad({ status: 'fail', code: 'CKR_OK', why: 'w', source: { kind: 'document', ref: 'some-notes.md §1' } })).toThrow(/not a URL/);
    expect(bad({ status: 'fail', message: '(', why: 'w', source: RUN })).toThrow(/invalid message pattern/);
  });

  test('every drivers/*.expect.json in the repository is valid', async () => {
    const { readdirSync } = await import('node:fs');
    const ids = readdirSync(new URL('../../drivers/', import.meta.url))
      .filter((f) => f.endsWith('.expect.json'))
      .map((f) => f.replace('.expect.json', ''));
    expect(ids.length).toBeGreaterThan(5);
    for (const id of ids) expect(() => Expectations.forDriver(id), id).not.toThrow();
  });

  test("a file that extends another driver's gets its entries, and they apply", () => {
    // The bridge built in a container is the same software as the cascade-hsm-bridge driver (drivers/*.expect.json).
    const base = Expectations.forDriver('cascade-hsm-bridge');
    const extended = Expectations.forDriver('bridge-container');
    expect(Object.keys(base.file.cases).length).toBeGreaterThan(3);
    expect(Object.keys(extended.file.cases).sort()).toEqual(Object.keys(base.file.cases).sort());
    expect(extended.path).toMatch(/extends drivers\/cascade-hsm-bridge\.expect\.json/);
    const r = rec('kmip', 'baseline/locate', 'unsupported', { reason: 'Result Reason: Operation Not Supported' });
    extended.apply('kmip/baseline/locate', r);
    expect(r.expected?.status).toBe('unsupported');
  });

  test('a changed code is a difference; a situation not tried this run is not', () => {
    const e = new Expectations(file);
    expect(e.goldenDifferences({ 'C_Login: wrong user PIN': 'CKR_PIN_INCORRECT' })).toEqual([]);
    expect(e.goldenDifferences({ 'C_Sign: 10-byte output buffer': 'CKR_ARGUMENTS_BAD', 'C_Something new': 'CKR_OK' })).toEqual([
      { situation: 'C_Sign: 10-byte output buffer', golden: 'CKR_BUFFER_TOO_SMALL', observed: 'CKR_ARGUMENTS_BAD' },
    ]);
  });
});

describe('status model: what fails a run', () => {
  const results = (cases: CaseRecord[]): RunResults =>
    runResultsOf([
      {
        id: 'd',
        title: 'd',
        kind: 'pkcs11',
        available: true,
        availabilityReason: '',
        status: 'ran',
        info: {},
        mechanisms: [],
        capabilities: {},
        goldenCodes: {},
        suitability: [],
        findings: [],
        cases,
        sections: {},
      },
    ]);
  test.each([
    ['pass', true],
    ['skip', true],
    ['unsupported', true],
    ['fail', false],
    ['crash', false],
    ['timeout', false],
  ] as [CaseStatus, boolean][])('a %s case: run passes = %s', (status, ok) => {
    expect(runPassed(results([rec('s', 'c', 'pass'), rec('s', 'x', status, { reason: 'r' })]))).toBe(ok);
  });
  test('an expected fail does not fail the run; a driver that did not start does', () => {
    const expected = rec('s', 'c', 'fail', { expected: { status: 'fail', source: RUN, verified: true } });
    expect(runPassed(results([expected]))).toBe(true);
    const r = results([]);
    r.drivers[0]!.status = 'error';
    expect(runPassed(r)).toBe(false);
  });
});

describe('the expectations audit in a run', () => {
  const traits = { physical: false, ephemeral: true, maxConcurrency: 1, caseTimeoutMs: 1000 };
  async function runWith(opts: { ci: boolean; updateGolden: boolean }) {
    const expectations = new Expectations({
      cases: {
        's/listed': { status: 'unsupported', message: 'no', why: 'known gap', source: RUN },
        's/renamed-away': { status: 'unsupported', message: 'no', why: 'gone', source: RUN },
      },
    });
    const report = emptyDriverReport('d', 'd', 'pkcs11');
    const ctx = makeContext({
      driverId: 'd',
      traits: traits as never,
      env: {},
      connections: {},
      report,
      expectations,
      events: { onCaseStart() {}, onCaseEnd() {}, log() {} },
      run: { expectations, ci: opts.ci },
      options: { updateGolden: opts.updateGolden },
    });
    ctx.suite = 's';
    await ctx.case('listed', () => {});
    ctx.suite = expectationsCheck.name;
    await runCaseTable(ctx, expectationsCheck, [expectationsCheck]);
    return report;
  }

  test('in CI an unexpected pass and an entry naming no case fail the audit case', async () => {
    const report = await runWith({ ci: true, updateGolden: false });
    const audit = report.cases.find((c) => c.suite === 'expectations' && c.case === 'audit')!;
    expect(audit.status).toBe('fail');
    expect(audit.reason).toMatch(/unexpected pass: s\/listed.*entry s\/renamed-away names no case/);
    expect(report.sections.expectations).toMatchObject({ unexpectedPasses: ['s/listed'], unknown: ['s/renamed-away'] });
  });

  test('outside CI, or when recording golden data, they are reported without a case', async () => {
    for (const opts of [
      { ci: false, updateGolden: false },
      { ci: true, updateGolden: true },
    ]) {
      const report = await runWith(opts);
      expect(report.cases.map((c) => c.case)).toEqual(['listed']);
      expect(report.cases[0]!.unexpectedPass).toBe(true);
      expect(report.sections.expectations).toMatchObject({ unexpectedPasses: ['s/listed'] });
    }
  });
});
