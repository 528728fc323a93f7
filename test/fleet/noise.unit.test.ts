/**
 * The noise model of diff and merge (src/fleet/noise.ts): the exact Mann-Whitney U test against published
 * values (fixtures/stats/mann-whitney.json names the sources) and against a brute-force count, and the
 * verdicts on the pair from issue 24: the same emulated card 3.5 minutes apart, 12.9 → 12.0 ops/s in three
 * batches each, which the old rule ("batch ranges do not overlap") called a regression.
 */
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { judge, mannWhitney, smallestP } from '../../src/fleet/noise.js';
import { diffRuns, renderDiffJson, renderDiffMarkdown, renderDiffText } from '../../src/fleet/diff.js';
import { buildMatrix } from '../../src/fleet/matrix.js';
import { renderSiteIndex } from '../../src/fleet/site.js';
import type { LoadedRun } from '../../src/fleet/load.js';
import type { BenchRecord } from '../../src/bench-format.js';
import type { DriverReport } from '../../src/results.js';
import { ROOT, runResultsOf } from '../core/helpers.js';

const REF = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'stats', 'mann-whitney.json'), 'utf8')) as {
  example: { x: number[]; y: number[]; u: number; pGreater: number; pTwoSided: number };
  criticalValues: { rows: { n1: number; n2: number; u: number | null; p?: number }[] };
};

/**
 * Distinct samples of sizes n1, n2 whose U (pairs x > y) is u: y = 0, 2, 4 …; each x sits above as many y as
 * u has left, a fraction apart from the other x in the same gap (the table is for data without ties).
 */
function withU(n1: number, n2: number, u: number): [number[], number[]] {
  const y = Array.from({ length: n2 }, (_, i) => 2 * i);
  let left = u;
  const x = Array.from({ length: n1 }, (_, i) => {
    const k = Math.min(n2, left);
    left -= k;
    return 2 * k - 1 + i / (n1 + 1);
  });
  return [x, y];
}

describe('exact Mann-Whitney U test', () => {
  test("R's wilcox.test example (Hollander & Wolfe): W = 35, one-sided p = 0.1272", () => {
    const { x, y, u, pGreater, pTwoSided } = REF.example;
    const t = mannWhitney(x, y);
    expect(t.u).toBe(u);
    expect(t.pUpper).toBeCloseTo(pGreater, 4);
    expect(t.p).toBeCloseTo(pTwoSided, 4);
    // The same data the other way round: U of y is n1·n2 − 35, and the lower tail is the same probability.
    const back = mannWhitney(y, x);
    expect(back.u).toBe(x.length * y.length - u);
    expect(back.pLower).toBeCloseTo(pGreater, 4);
  });

  test('the textbook table of critical values of U (two-sided, α 0.05)', () => {
    for (const { n1, n2, u, p } of REF.criticalValues.rows) {
      const label = `${n1} + ${n2}`;
      if (u === null) {
        expect(mannWhitney(...withU(n1, n2, 0)).p, label).toBeGreaterThan(0.05);
        expect(smallestP(n1, n2), label).toBeGreaterThan(0.05);
        continue;
      }
      const at = mannWhitney(...withU(n1, n2, u));
      expect(at.u, label).toBe(u);
      expect(at.p, label).toBeCloseTo(p!, 12);
      expect(mannWhitney(...withU(n1, n2, u + 1)).p, label).toBeGreaterThan(0.05);
    }
  });

  test('ties: mid-ranks, with the exact distribution counted by brute force over every split', () => {
    const x = [3, 5, 5, 7, 9, 9],
      y = [1, 3, 5, 6, 9, 2, 4];
    const pooled = [...x, ...y];
    const uOf = (xs: number[], ys: number[]) => xs.reduce((n, a) => n + ys.reduce((m, b) => m + (a > b ? 1 : a === b ? 0.5 : 0), 0), 0);
    const observed = uOf(x, y);
    let lower = 0,
      upper = 0,
      total = 0;
    for (let mask = 0; mask < 1 << pooled.length; mask++) {
      let bits = 0;
      for (let i = 0; i < pooled.length; i++) if (mask & (1 << i)) bits++;
      if (bits !== x.length) continue;
      const xs = pooled.filter((_, i) => mask & (1 << i)),
        ys = pooled.filter((_, i) => !(mask & (1 << i)));
      const u = uOf(xs, ys);
      total++;
      if (u <= observed + 1e-9) lower++;
      if (u >= observed - 1e-9) upper++;
    }
    const t = mannWhitney(x, y);
    expect(t.u).toBe(observed);
    expect(t.pLower).toBeCloseTo(lower / total, 12);
    expect(t.pUpper).toBeCloseTo(upper / total, 12);
  });
});

// Issue 24's pair: 12.9 ops/s (batches 12.6–13.3) → 12.0 ops/s (batches 11.4–12.4), three batches each.
const CARD_OLD = [12.6, 12.9, 13.3];
const CARD_NEW = [11.4, 12.0, 12.4];

function record(rates: number[]): BenchRecord {
  const sorted = [...rates].sort((a, b) => a - b);
  return {
    driver: 'smartcard-hsm',
    operation: 'sign-threads',
    algorithm: 'RSA-2048',
    concurrency: 1,
    samples: rates.length * 10,
    opsPerSec: sorted[(sorted.length - 1) / 2]!,
    best: sorted.at(-1)!,
    rates,
  };
}

function loaded(file: string, finishedAt: string, bench: BenchRecord[]): LoadedRun {
  return { file, id: file, results: runResultsOf([], { finishedAt }), bench };
}

describe('the noise model', () => {
  test("issue 24's card pair is within noise by default, and not enough evidence below a 7 % threshold", () => {
    const j = judge({ opsPerSec: 12.9, rates: CARD_OLD }, { opsPerSec: 12.0, rates: CARD_NEW });
    expect(j).toMatchObject({ verdict: 'within noise', thresholdPercent: 10, samples: [3, 3] });
    expect(j.changePercent).toBeCloseTo((12.0 / 12.9 - 1) * 100, 10);
    expect(judge({ opsPerSec: 12.9, rates: CARD_OLD }, { opsPerSec: 12.0, rates: CARD_NEW }, 5).verdict).toBe('not enough evidence');
  });

  test('a real halving with enough batches is slower beyond noise; the way back is faster beyond noise', () => {
    const old = { opsPerSec: 100, rates: [98, 99, 100, 101, 102] },
      now = { opsPerSec: 50, rates: [49, 49.5, 50, 50.5, 51] };
    const j = judge(old, now);
    expect(j.verdict).toBe('slower beyond noise');
    expect(j.p).toBeCloseTo(2 / 252, 12); // C(10, 5) = 252 splits, the two extreme ones
    expect(judge(now, old).verdict).toBe('faster beyond noise');
  });

  test('a move beyond the threshold that the test does not confirm is within noise (overlapping batches)', () => {
    const old = { opsPerSec: 100, rates: [60, 100, 140, 80, 120] },
      now = { opsPerSec: 85, rates: [50, 85, 130, 95, 110] };
    const j = judge(old, now);
    expect(j.p).toBeGreaterThan(0.05);
    expect(j.verdict).toBe('within noise');
  });

  // Shaped like a measurement on this 2-core VM (SoftHSM RSA-2048 vs node:crypto RSA-2048, interleaved 100 ms
  // batches, runs 3 s apart): the token's median moved 577 → 807/s between runs, the machine's own 961 → 1337/s,
  // their ratio only 0.599 → 0.623.
  const machineOld = [960, 955, 970, 965, 950, 962],
    machineSlow = machineOld.map((m) => m * 0.75);
  const tokenOld = machineOld.map((m, i) => m * (0.6 + 0.004 * i));
  test('a token that slowed only as much as the machine did is not enough evidence, never a regression', () => {
    const j = judge(
      { opsPerSec: 580, rates: tokenOld, machineRates: machineOld },
      { opsPerSec: 435, rates: tokenOld.map((t) => t * 0.75), machineRates: machineSlow },
    );
    expect(j.verdict).toBe('not enough evidence');
    expect(j.machine?.changePercent).toBeCloseTo(-25, 6);
    expect(j.machine?.relativeChangePercent).toBeCloseTo(0, 6);
    expect(j.test).toMatch(/the machine may have changed rather than the token/);
    // Without the machine's figures the same batches are a regression: what the reference is for.
    expect(judge({ opsPerSec: 580, rates: tokenOld }, { opsPerSec: 435, rates: tokenOld.map((t) => t * 0.75) }).verdict).toBe('slower beyond noise');
  });

  test('a halving stays slower beyond noise when the machine slowed too, and when it did not', () => {
    const halved = tokenOld.map((t) => t * 0.5);
    const sameMachine = judge({ opsPerSec: 580, rates: tokenOld, machineRates: machineOld }, { opsPerSec: 290, rates: halved, machineRates: machineOld });
    expect(sameMachine.verdict).toBe('slower beyond noise');
    expect(sameMachine.machine?.relativeVerdict).toBe('slower beyond noise');
    const slowerMachine = judge(
      { opsPerSec: 580, rates: tokenOld, machineRates: machineOld },
      { opsPerSec: 218, rates: halved.map((t) => t * 0.75), machineRates: machineSlow },
    );
    expect(slowerMachine.verdict).toBe('slower beyond noise');
    expect(slowerMachine.machine?.relativeChangePercent).toBeCloseTo(-50, 6);
  });

  test("a card's steady figure stays within noise however the machine moved (its own batches decide first)", () => {
    const card = [12.6, 12.9, 13.3, 12.8, 13.0, 12.7];
    const j = judge({ opsPerSec: 12.85, rates: card, machineRates: machineOld }, { opsPerSec: 12.85, rates: [...card].reverse(), machineRates: machineSlow });
    expect(j.verdict).toBe('within noise');
    expect(j.machine).toBeUndefined();
  });

  test('latencies, timed in one window per run: intervals apart beyond the threshold are not enough evidence, never a regression', () => {
    const a = { opsPerSec: 1000, latency: { mean: 1, rme: 2, samples: 200 } },
      b = { opsPerSec: 500, latency: { mean: 2, rme: 2, samples: 200 } };
    expect(judge(a, b)).toMatchObject({ verdict: 'not enough evidence', test: expect.stringMatching(/one window/) });
    const wide = { opsPerSec: 500, latency: { mean: 2, rme: 60, samples: 3 } };
    expect(judge(a, wide).verdict).toBe('within noise');
    const close = { opsPerSec: 950, latency: { mean: 1 / 0.95, rme: 0.1, samples: 200 } };
    expect(judge(a, close).verdict).toBe('within noise');
    expect(judge({ opsPerSec: 2 }, { opsPerSec: 1 }).verdict).toBe('not enough evidence');
  });
});

describe('diff with the noise model', () => {
  const oldRun = loaded('old/results.json', '2026-01-01T10:00:00Z', [record(CARD_OLD)]);
  const newRun = loaded('new/results.json', '2026-01-01T10:03:30Z', [record(CARD_NEW)]);

  test("issue 24's card pair: within noise in every output, no regression whatever --fail-on is", () => {
    for (const failOn of ['conformance', 'performance', 'all'] as const) {
      const d = diffRuns(oldRun, newRun, { failOn });
      expect(d).toMatchObject({ regressions: 0, performanceRegressions: 0, conformanceRegressions: 0, failOn });
      expect(d.changes).toEqual([
        expect.objectContaining({ kind: 'throughput', regression: false, performance: expect.objectContaining({ verdict: 'within noise' }) }),
      ]);
    }
    const d = diffRuns(oldRun, newRun);
    const text = renderDiffText(d);
    expect(text).toMatch(
      /^ {2}within noise +throughput sign-threads RSA-2048 c=1: 12\.9 ops\/s \(3 batches 12\.6–13\.3\) → 12\.0 ops\/s \(3 batches 11\.4–12\.4\): −7\.0 % \(threshold 10 %\); 3 \+ 3 batches: too few/m,
    );
    expect(text).toContain('performance noise model: beyond noise = moved ≥ 10 % and significant at α 0.05');
    const md = renderDiffMarkdown(d);
    expect(md).toContain('<details><summary>1 performance figure(s) within noise or without enough evidence</summary>');
    expect(md).toMatch(/^\| within noise \| smartcard-hsm \| throughput \| sign-threads RSA-2048 c=1 \| 12\.9 ops\/s/m);
    expect(JSON.parse(renderDiffJson(d))).toMatchObject({ noiseModel: { thresholdPercent: 10, alpha: 0.05 }, regressions: 0 });
  });

  test('a halving: a performance regression, counted by --fail-on performance and all, not by conformance', () => {
    const rates = [12.6, 12.9, 13.3, 12.8, 13.0];
    const slow = loaded('slow/results.json', '2026-01-01T11:00:00Z', [record(rates.map((r) => r / 2))]);
    const before = loaded('old/results.json', '2026-01-01T10:00:00Z', [record(rates)]);
    expect(diffRuns(before, slow)).toMatchObject({ regressions: 0, performanceRegressions: 1 });
    expect(diffRuns(before, slow, { failOn: 'performance' }).regressions).toBe(1);
    expect(diffRuns(before, slow, { failOn: 'all' }).regressions).toBe(1);
    const d = diffRuns(before, slow, { failOn: 'all' });
    expect(renderDiffText(d)).toMatch(
      /^ {2}slower beyond noise throughput sign-threads RSA-2048 c=1: .*−50\.0 % \(threshold 10 %\); Mann-Whitney U = 0, exact p = 0\.0079/m,
    );
    expect(renderDiffMarkdown(d)).toMatch(/#### Performance beyond noise\n\n.*\n.*\n\| ❌ slower beyond noise \|/);
    // The way back is faster beyond noise: listed, never a regression.
    expect(diffRuns(slow, before, { failOn: 'all' })).toMatchObject({
      regressions: 0,
      changes: [expect.objectContaining({ performance: expect.objectContaining({ verdict: 'faster beyond noise' }) })],
    });
  });

  test('a run benchmarked on a busy machine is named in a warning beside the performance changes', () => {
    // Only what the warning reads of a driver report: its bench section's environment, as suites/bench.ts records it.
    const busy = {
      id: 'smartcard-hsm',
      available: false,
      status: 'unavailable',
      cases: [],
      sections: { bench: { environment: { loadAverage: '16.2 15.1 11.0', cpus: 2 } } },
    } as unknown as DriverReport;
    const idle = {
      id: 'smartcard-hsm',
      available: false,
      status: 'unavailable',
      cases: [],
      sections: { bench: { environment: { loadAverage: '0.4 0.3 0.2', cpus: 2 } } },
    } as unknown as DriverReport;
    const withDriver = (run: LoadedRun, d: DriverReport): LoadedRun => ({ ...run, results: runResultsOf([d], { finishedAt: run.results.finishedAt }) });
    const d = diffRuns(withDriver(oldRun, idle), withDriver(newRun, busy));
    expect(d.warnings).toEqual([expect.stringMatching(/^the new run's benchmark started at a 1-minute load average of 16\.2 on 2 CPUs/)]);
    expect(renderDiffText(d)).toMatch(/^warning: the new run's benchmark started at a 1-minute load average of 16\.2 on 2 CPUs/m);
    expect(renderDiffMarkdown(d)).toMatch(/^> ⚠ the new run's benchmark/m);
    expect(diffRuns(withDriver(oldRun, idle), withDriver(newRun, idle)).warnings).toEqual([]);
  });

  test("merge's trend marks use the same model", () => {
    const rates = [12.6, 12.9, 13.3, 12.8, 13.0];
    const runs = [
      loaded('a/results.json', '2026-01-01T10:00:00Z', [record(rates)]),
      loaded('b/results.json', '2026-01-02T10:00:00Z', [record(rates.map((r) => r * 0.95))]),
      loaded('c/results.json', '2026-01-03T10:00:00Z', [record(rates.map((r) => r * 0.95 * 0.5))]),
    ];
    const series = Object.values(buildMatrix(runs).bench)[0]![0]!;
    expect(series.points.map((p) => p.trend?.verdict)).toEqual([undefined, 'within noise', 'slower beyond noise']);
    // On the page: one mark, on the third point, saying why; the point within noise has none.
    const html = renderSiteIndex(buildMatrix(runs), '2026-01-04T00:00:00Z');
    const marks = [...html.matchAll(/<span class="trend [^"]*" data-trend="([^"]*)" title="([^"]*)">(.)<\/span>/g)];
    expect(marks.map((m) => [m[1], m[3]])).toEqual([['slower beyond noise', '▼']]);
    expect(marks[0]![2]).toMatch(/^slower beyond noise: −50\.0 % \(threshold 10 %\); Mann-Whitney U = 0, exact p = 0\.0079/);
  });
});
