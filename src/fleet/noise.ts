/**
 * The noise model for performance changes, used by `diff` (the regression gate) and by `merge` (the trend
 * marks of the benchmark history). A figure moved beyond noise only when all hold:
 *
 * 1. it moved by at least the threshold (default 10 %, `diff --perf-threshold PCT`), relative to the old figure;
 * 2. a statistical test over the two runs' measurements says a move of at least the threshold is not chance,
 *    at α = 0.05:
 *    - figures timed as repeated batches (rates): the exact two-sided Mann-Whitney U (Wilcoxon rank-sum) test
 *      over the per-batch rates, the new ones first brought back by the threshold, with mid-ranks for ties. It
 *      assumes nothing about how batch rates are distributed, and one batch slowed by a load spike cannot decide it. With few batches the test cannot
 *      reach α at all (3 + 3 batches: the smallest possible p is 0.1): that is "not enough evidence";
 *    - per-operation latencies (mean ± margin of error, 95 %) are timed in one window per run: their intervals
 *      describe that window, not the drift between runs, so intervals apart beyond the threshold are "not enough
 *      evidence", never beyond noise; the batch figures of the same operation decide;
 * 3. where both runs measured the machine's own speed beside the batches (BenchRecord.machineRates), the figure
 *    also moved beyond noise relative to it, with the threshold widened by the machine's own move between the runs;
 *    otherwise the machine, not the token, may have changed.
 *
 * A figure that moved less than the threshold is within noise whatever the test says; one that moved more
 * but whose test could not be run (too few batches, no measured spread) is "not enough evidence", never a
 * regression. Batches of one run share that run's load, so the test alone would call a busier machine a
 * slower token; the threshold is what absorbs the load that differs between runs. docs/benchmarks.md says
 * the same for users.
 */
import type { BenchRecord } from '../bench-format.js';

export const DEFAULT_PERF_THRESHOLD_PERCENT = 10;
export const ALPHA = 0.05;

export type PerfVerdict = 'slower beyond noise' | 'faster beyond noise' | 'within noise' | 'not enough evidence';

/** One figure as the model needs it: rates are per second, bigger is better. */
export interface PerfFigure {
  opsPerSec: number;
  /** The rate of each batch, when the figure was timed as repeated batches. */
  rates?: number[];
  /** The machine's own speed in the round of each batch (BenchRecord.machineRates), same order as `rates`. */
  machineRates?: number[];
  /** Per-operation latency, when the figure was timed one operation at a time; rme in percent (95 %). */
  latency?: { mean: number; rme: number; samples: number };
}

/** What the model needs of a bench.json record. */
export function perfFigure(r: BenchRecord): PerfFigure {
  const f: PerfFigure = { opsPerSec: r.opsPerSec };
  if (r.rates?.length) f.rates = r.rates;
  if (r.rates?.length && r.machineRates?.length === r.rates.length) f.machineRates = r.machineRates;
  if (r.latencyMs) f.latency = { mean: r.latencyMs.mean, rme: r.latencyMs.rme, samples: r.latencyMs.samples };
  return f;
}

export interface PerfJudgement {
  verdict: PerfVerdict;
  /** (new ÷ old − 1) × 100. */
  changePercent: number;
  thresholdPercent: number;
  alpha: number;
  /** What the test was and what it gave, in words (printed with the change). */
  test: string;
  /** The test's p-value, for the rank test. */
  p?: number;
  /** Batches (or latency samples) of the old and the new figure. */
  samples: [number, number];
  /**
   * When both runs measured the machine's own speed in the rounds of the figure's batches: how much the machine
   * moved, and the token's move relative to it (each batch ÷ the machine's speed in its round), in percent.
   */
  machine?: { changePercent: number; relativeChangePercent: number; relativeVerdict: PerfVerdict };
}

/** The model in one line, for the outputs that print it. */
export function describeModel(thresholdPercent: number): string {
  return (
    `beyond noise = moved ≥ ${thresholdPercent} % and significant at α ${ALPHA} ` +
    '(exact two-sided Mann-Whitney U over the per-batch rates; a latency, timed in one window per run, is at most not enough evidence), ' +
    "and, where both runs measured this machine's own speed beside the token, beyond noise relative to it too"
  );
}

const binomial = (n: number, k: number) => {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
};

export interface RankTest {
  /** Mann-Whitney U of x: pairs (x, y) with x > y, plus half of the ties. */
  u: number;
  /** P(U ≤ u) and P(U ≥ u) under the null hypothesis (exact, conditional on ties). */
  pLower: number;
  pUpper: number;
  /** Two-sided: 2 × the smaller tail, at most 1 (as R's wilcox.test and SciPy's mannwhitneyu compute it). */
  p: number;
}

/**
 * The exact Mann-Whitney U test of x against y. Under the null hypothesis every way of choosing which |x| of
 * the pooled values belong to x is equally likely; counting them by the sum of their (mid-)ranks gives the
 * exact distribution, ties included. Ranks are doubled so that mid-ranks stay integers.
 */
export function mannWhitney(x: readonly number[], y: readonly number[]): RankTest {
  const n1 = x.length,
    n = x.length + y.length;
  const pooled = [...x.map((v) => ({ v, inX: true })), ...y.map((v) => ({ v, inX: false }))].sort((a, b) => a.v - b.v);
  const rank2: number[] = new Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && pooled[j + 1]!.v === pooled[i]!.v) j++;
    for (let k = i; k <= j; k++) rank2[k] = i + j + 2; // twice the mid-rank of positions i..j (1-based)
    i = j + 1;
  }
  let observed = 0;
  for (let i = 0; i < n; i++) if (pooled[i]!.inX) observed += rank2[i]!;
  // ways[k][s]: subsets of k of the values seen so far whose doubled ranks sum to s.
  const maxSum = rank2.reduce((a, b) => a + b, 0);
  const ways: number[][] = Array.from({ length: n1 + 1 }, () => new Array<number>(maxSum + 1).fill(0));
  ways[0]![0] = 1;
  // Each value joins the subsets counted so far; k downwards so that no value is counted twice.
  for (const r of rank2) for (let k = n1 - 1; k >= 0; k--) for (let s = maxSum - r; s >= 0; s--) ways[k + 1]![s + r]! += ways[k]![s]!;
  const dist = ways[n1]!;
  const total = binomial(n, n1);
  let lower = 0,
    upper = 0;
  for (let s = 0; s <= maxSum; s++) {
    if (s <= observed) lower += dist[s]!;
    if (s >= observed) upper += dist[s]!;
  }
  const pLower = lower / total,
    pUpper = upper / total;
  return { u: observed / 2 - (n1 * (n1 + 1)) / 2, pLower, pUpper, p: Math.min(1, 2 * Math.min(pLower, pUpper)) };
}

/** The smallest two-sided p the exact test can give for n1 + n2 distinct values: both extreme orderings. */
export const smallestP = (n1: number, n2: number) => Math.min(1, 2 / binomial(n1 + n2, n1));

const pct = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)} %`;
const pFmt = (p: number) => (p < 0.001 ? p.toExponential(1) : p.toPrecision(2));

const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Judge a move from old to new under the noise model. When both runs measured the machine's own speed beside the
 * figure (PerfFigure.machineRates), a move beyond noise must also be one relative to the machine: the same verdict
 * for every batch divided by the machine's speed in its round. A shared virtual machine's own speed moves by tens
 * of percent between runs, and a token that signs on its CPU moves with it; when the two disagree, the runs cannot
 * show whether the token or the machine changed: "not enough evidence", never a regression.
 */
export function judge(old: PerfFigure, now: PerfFigure, thresholdPercent = DEFAULT_PERF_THRESHOLD_PERCENT): PerfJudgement {
  const own = judgeOwn(old, now, thresholdPercent);
  if (!own.verdict.endsWith('beyond noise')) return own;
  const against = relativeToMachine(old, now);
  if (!against) return own;
  // How closely a token's speed follows the machine's is unknown (not at all for a card, about one to one for SoftHSM,
  // more or less for memory-bound work), so the relative move must clear the threshold plus the machine's own move.
  const rel = judgeOwn(against.old, against.now, thresholdPercent + Math.abs(against.machineChangePercent));
  const machine = { changePercent: against.machineChangePercent, relativeChangePercent: rel.changePercent, relativeVerdict: rel.verdict };
  const relText = `relative to this machine's own speed in the same rounds (node:crypto; it moved ${pct(machine.changePercent)}), the token moved ${pct(rel.changePercent)}`;
  if (rel.verdict === own.verdict) return { ...own, machine, test: `${own.test}; ${relText}, also ${rel.verdict} (${rel.test})` };
  return {
    ...own,
    verdict: 'not enough evidence',
    machine,
    test: `${own.test}; but ${relText}, ${rel.verdict}: the machine may have changed rather than the token (run both again on a steady machine)`,
  };
}

/** Both figures relative to the machine's own speed, when both runs measured it: each batch rate divided by the machine's rate in its round. */
function relativeToMachine(old: PerfFigure, now: PerfFigure): { old: PerfFigure; now: PerfFigure; machineChangePercent: number } | undefined {
  if (old.rates && now.rates && old.machineRates && now.machineRates) {
    const relative = (f: PerfFigure): PerfFigure => {
      const rates = f.rates!.map((r, i) => r / f.machineRates![i]!);
      return { opsPerSec: median(rates), rates };
    };
    return { old: relative(old), now: relative(now), machineChangePercent: (median(now.machineRates) / median(old.machineRates) - 1) * 100 };
  }
  return undefined;
}

/** The model on the figure's own measurements. */
function judgeOwn(old: PerfFigure, now: PerfFigure, thresholdPercent: number): PerfJudgement {
  const changePercent = (now.opsPerSec / old.opsPerSec - 1) * 100;
  const base = { changePercent, thresholdPercent, alpha: ALPHA };
  const direction: PerfVerdict = changePercent < 0 ? 'slower beyond noise' : 'faster beyond noise';
  const belowThreshold = Math.abs(changePercent) < thresholdPercent;

  if (old.rates?.length && now.rates?.length) {
    const samples: [number, number] = [old.rates.length, now.rates.length];
    const least = smallestP(...samples);
    if (least >= ALPHA) {
      const test = `${samples[0]} + ${samples[1]} batches: too few for the rank test (its smallest p is ${pFmt(least)}, not below α ${ALPHA})`;
      return { ...base, verdict: belowThreshold ? 'within noise' : 'not enough evidence', test, samples };
    }
    // The test is of a move of at least the threshold, not of any move: the new batches are first brought back by
    // the threshold (slower: ÷ 0.9 at 10 %), and must still rank apart from the old ones. Runs of one stack differ by
    // some percent whatever is done (a process's placement on the machine); a test of "any move" finds that
    // significant with tight batches, and a point estimate just past the threshold then made a regression.
    const shift = 1 + (Math.sign(changePercent) * thresholdPercent) / 100;
    const t = mannWhitney(
      now.rates.map((r) => r / shift),
      old.rates,
    );
    // U of the new batches below half of all pairs means they rank lower: the test agrees the new run is slower.
    const agrees = t.u < (samples[0] * samples[1]) / 2 === changePercent < 0;
    const significant = t.p < ALPHA && agrees;
    const test =
      `Mann-Whitney U = ${t.u}, exact p = ${pFmt(t.p)} for a move of at least ${thresholdPercent} % ` +
      `(the new batches ÷ ${shift.toFixed(2)} against the old; ${samples[0]} + ${samples[1]} batches, α ${ALPHA})`;
    return { ...base, verdict: !belowThreshold && significant ? direction : 'within noise', test, p: t.p, samples };
  }
  const lo = old.latency,
    ln = now.latency;
  if (lo && ln && lo.samples >= 2 && ln.samples >= 2 && lo.rme > 0 && ln.rme > 0) {
    const samples: [number, number] = [lo.samples, ln.samples];
    const [a0, a1] = [lo.mean * (1 - lo.rme / 100), lo.mean * (1 + lo.rme / 100)];
    const [b0, b1] = [ln.mean * (1 - ln.rme / 100), ln.mean * (1 + ln.rme / 100)];
    const apart = a1 < b0 || b1 < a0;
    // The samples of one run are one window: their interval is that window's, not the drift between runs, which
    // on a shared machine is far wider (CI's quick bench: ECDSA key generation 59 → 42/s, ±4 % and ±7 %, same stack).
    const test =
      `95 % confidence intervals of the mean latency (±${lo.rme.toFixed(1)} %, ±${ln.rme.toFixed(1)} %) ${apart ? 'do not overlap' : 'overlap'}` +
      (apart && !belowThreshold ? ', but each run measured it in one window, which says nothing of the drift between runs: the batch figures decide' : '');
    return { ...base, verdict: belowThreshold || !apart ? 'within noise' : 'not enough evidence', test, samples };
  }
  const samples: [number, number] = [old.rates?.length ?? old.latency?.samples ?? 1, now.rates?.length ?? now.latency?.samples ?? 1];
  const test = 'no spread measured (a single sample, or a best-of-N without its batches): no test possible';
  return { ...base, verdict: belowThreshold ? 'within noise' : 'not enough evidence', test, samples };
}

/** "−7.0 % (threshold 10 %); Mann-Whitney U = …": the judgement in words, after the two figures. */
export function describeJudgement(j: PerfJudgement): string {
  return `${pct(j.changePercent)} (threshold ${j.thresholdPercent} %); ${j.test}`;
}
