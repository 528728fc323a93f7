/** Latency statistics from raw samples, for the loops tinybench cannot drive (concurrency, wall-clock rates). */
import type { LatencyStats } from './types.js';

/** Student's t critical values (two-sided 95 %) for small degrees of freedom; 1.96 beyond. */
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069,
  2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** Linear interpolation between closest ranks (the "R-7" quantile, as most tools compute it). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function latencyStats(samples: ArrayLike<number>): LatencyStats {
  const n = samples.length;
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  const mean = n ? sum / n : NaN;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (sorted[i]! - mean) ** 2;
  const sd = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  const t = n > 1 ? (T95[n - 2] ?? 1.96) : 0;
  const rme = n > 1 && mean > 0 ? ((t * sd) / Math.sqrt(n) / mean) * 100 : 0;
  return { samples: n, mean, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), min: sorted[0] ?? NaN, max: sorted[n - 1] ?? NaN, sd, rme };
}
