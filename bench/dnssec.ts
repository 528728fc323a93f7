/**
 * The DNSSEC operator's view of the signing figures (bench.md §5): Cascade's "Generated N signatures in
 * T s (R sig/s)" line, and how long a full re-sign takes at the best measured concurrency.
 */
import type { DnssecView, ScalingPoint, SignFigure } from './types.js';

/** Zone sizes in RRsets for the re-sign estimate. */
export const ZONE_SIZES: Record<string, number> = { '1k': 1_000, '100k': 100_000, '1M': 1_000_000 };

/** Cascade (src/signer/full.rs) prints whole seconds and a whole rate. */
export function cascadeLine(signatures: number, seconds: number): string {
  const rate = seconds > 0 ? signatures / seconds : 0;
  return `Generated ${signatures} signatures in ${Math.floor(seconds)}s (${Math.round(rate)} sig/s)`;
}

/** One RRSIG per RRset with one active ZSK: time ≈ RRsets / sig/s. */
export function resignSeconds(rrsets: number, sigPerSec: number): number {
  return rrsets / sigPerSec;
}

export function dnssecViews(sign: SignFigure[], scaling: ScalingPoint[]): DnssecView[] {
  const views: DnssecView[] = [];
  for (const s of sign) {
    const points = scaling.filter((p) => p.alg === s.alg && p.completed > 0);
    if (points.length === 0) continue;
    const best = points.reduce((a, b) => (b.opsPerSec > a.opsPerSec ? b : a));
    const resign: Record<string, number> = {};
    for (const [name, n] of Object.entries(ZONE_SIZES)) resign[name] = resignSeconds(n, best.opsPerSec);
    views.push({
      algorithm: s.algorithm, dnssec: s.dnssec, bestConcurrency: best.concurrency, signatures: best.completed,
      seconds: best.wallSeconds, sigPerSec: best.opsPerSec, line: cascadeLine(best.completed, best.wallSeconds), resignSeconds: resign,
    });
  }
  return views;
}

/** "4.6 h", "12 min", "3.2 s": a duration a person reads at a glance. */
export function humanDuration(seconds: number): string {
  if (seconds >= 5400) return `${(seconds / 3600).toFixed(1)} h`;
  if (seconds >= 90) return `${Math.round(seconds / 60)} min`;
  if (seconds >= 10) return `${Math.round(seconds)} s`;
  return `${seconds.toFixed(seconds >= 1 ? 1 : 2)} s`;
}
