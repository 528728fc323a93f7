/**
 * Suites as tables of named cases (src/runner/cases.ts): a case whose `needs` did not pass is skip "blocked by",
 * once, pointing at the root cause; `run --case` selects cases by glob with what they need; the time limits.
 */
import { describe, expect, test } from 'vitest';
import { CaseSelection, runCaseTable } from '../../src/runner/cases.js';
import { makeContext } from '../../src/runner/context.js';
import { limitsFor } from '../../src/runner/limits.js';
import { Expectations } from '../../src/expectations.js';
import { emptyDriverReport } from '../../src/results.js';
import { UsageError } from '../../src/errors.js';
import { DEFAULT_TRAITS } from '../../src/driver.js';
import type { Suite } from '../../src/suite.js';

const first: Suite<{ made: string[] }> = {
  name: 'first',
  title: 'first',
  setup: () => ({ made: [] }),
  cases: [
    { name: 'make', run: (_c, s) => void s.made.push('key') },
    { name: 'broken', run: () => Promise.reject(new Error('the root cause')) },
    { name: 'uses-broken', needs: ['broken'], run: () => undefined },
    { name: 'uses-that', needs: ['uses-broken'], run: () => undefined },
    { name: 'uses-make', needs: ['make'], run: (_c, s) => expect(s.made).toEqual(['key']) },
    { name: 'not-here', applies: () => false, run: () => undefined },
    { name: 'workaround', reads: ['broken'], run: () => undefined },
  ],
};
const second: Suite = { name: 'second', title: 'second', cases: [{ name: 'across', needs: ['first/broken'], run: () => undefined }] };
const suites = [first, second];

function context(onCaseStart: (suite: string, name: string, timeoutMs: number) => void = () => undefined) {
  const report = emptyDriverReport('d', 'd', 'pkcs11');
  const ctx = makeContext({
    driverId: 'd',
    traits: DEFAULT_TRAITS,
    env: {},
    connections: {},
    report,
    expectations: new Expectations({ cases: {} }),
    events: { onCaseStart, onCaseEnd() {}, log() {} },
  });
  return { ctx, report };
}

describe('a table of cases', () => {
  test('what a failed case blocks is skip with a pointer to it, and only the root cause fails', async () => {
    const { ctx, report } = context();
    for (const s of [first, second]) {
      ctx.suite = s.name;
      await runCaseTable(ctx, s, suites);
    }
    const byId = Object.fromEntries(report.cases.map((c) => [`${c.suite}/${c.case}`, `${c.status}${c.reason ? `: ${c.reason}` : ''}`]));
    expect(byId).toEqual({
      'first/make': 'pass',
      'first/broken': 'fail: the root cause',
      'first/uses-broken': 'skip: blocked by first/broken (fail)',
      'first/uses-that': 'skip: blocked by first/uses-broken (skip)',
      'first/uses-make': 'pass',
      // `reads` orders and selects, but never blocks: a workaround runs because its as-packaged case failed.
      'first/workaround': 'pass',
      'second/across': 'skip: blocked by first/broken (fail)',
    });
  });
});

describe('before() and a time limit from the state', () => {
  test('before prepares outside the limit, the limit is read after it; a blocked case gets no before', async () => {
    const starts: number[] = [];
    const { ctx, report } = context((_s, _n, ms) => void starts.push(ms));
    ctx.suite = 'sized';
    const sized: Suite<{ rate?: number; log: string[] }> = {
      name: 'sized',
      title: 'sized',
      setup: () => ({ log: [] }),
      cases: [
        { name: 'fails', run: () => Promise.reject(new Error('no')) },
        {
          name: 'measured',
          before: async (s) => void (s.rate = 4),
          timeoutMs: (_ctx, s) => 1000 * s.rate!,
          run: (_c, s) => void s.log.push(`measured at ${s.rate}`),
        },
        { name: 'blocked', needs: ['fails'], before: async (s) => void s.log.push('before blocked'), run: () => undefined },
      ],
      teardown: (_ctx, s) => void s.log.push('teardown'),
    };
    let state: { log: string[] } | undefined;
    const setup = sized.setup!;
    await runCaseTable(ctx, { ...sized, setup: (c) => (state = setup(c) as { log: string[] }) }, [sized]);
    expect(starts[1]).toBe(4000);
    expect(state!.log).toEqual(['measured at 4', 'teardown']);
    expect(report.cases.map((c) => c.status)).toEqual(['fail', 'pass', 'skip']);
  });

  test('a before that throws aborts the suite, and teardown still runs', async () => {
    const { ctx } = context();
    ctx.suite = 'x';
    let tornDown = false;
    const x: Suite<void> = {
      name: 'x',
      title: 'x',
      cases: [{ name: 'c', before: () => Promise.reject(new Error('cannot size it')), run: () => undefined }],
      teardown: () => void (tornDown = true),
    };
    await expect(runCaseTable(ctx, x, [x])).rejects.toThrow('cannot size it');
    expect(tornDown).toBe(true);
  });
});

describe('run --case', () => {
  test('a glob on suite/case or on the case name selects those cases and, transitively, what they need', () => {
    expect([...new CaseSelection(suites, ['first/uses-that']).ids]).toEqual(['first/uses-that', 'first/uses-broken', 'first/broken']);
    expect([...new CaseSelection(suites, ['across']).ids]).toEqual(['second/across', 'first/broken']);
    expect(new CaseSelection(suites, ['first/*']).ids.size).toBe(7);
    expect([...new CaseSelection(suites, ['first/workaround']).ids]).toEqual(['first/workaround', 'first/broken']);
    const s = new CaseSelection(suites, ['uses-m?ke']);
    expect([...s.ids]).toEqual(['first/uses-make', 'first/make']);
    expect(s.runs(first) && !s.runs(second)).toBe(true);
  });

  test('a pattern that matches no case is a usage error naming it', () => {
    expect(() => new CaseSelection(suites, ['first/*', 'nothing*'])).toThrow(UsageError);
    expect(() => new CaseSelection(suites, ['nothing*'])).toThrow(/--case "nothing\*" matches no case/);
  });
});

describe('time limits (src/runner/limits.ts)', () => {
  const traits = { ...DEFAULT_TRAITS, caseTimeoutMs: 60_000, startTimeoutMs: 900_000 };
  test("from the driver's traits, or HSM_CASE_TIMEOUT_S for case, setup and start alike", () => {
    expect(limitsFor(traits, {})).toEqual({ caseMs: 60_000, setupMs: 60_000, startMs: 900_000, stopMs: 60_000 });
    expect(limitsFor({ ...DEFAULT_TRAITS, caseTimeoutMs: 300_000 }, {}).startMs).toBe(300_000);
    expect(limitsFor(traits, { HSM_CASE_TIMEOUT_S: '2.5' })).toEqual({ caseMs: 2500, setupMs: 2500, startMs: 2500, stopMs: 60_000 });
    expect(() => limitsFor(traits, { HSM_CASE_TIMEOUT_S: '0' })).toThrow(/HSM_CASE_TIMEOUT_S must be a number of seconds greater than 0, got "0"/);
  });
});
