/**
 * The DNSSEC operator's view of the signing figures: how long a full re-sign takes at the best measured
 * throughput, one RRSIG per RRset with one active ZSK.
 */
import type { DnssecView, SignFigure } from './types.js';

/** Zone sizes in RRsets for the re-sign estimate. */
export const ZONE_SIZES: Record<string, number> = { '1k': 1_000, '100k': 100_000, '1M': 1_000_000 };

/** One RRSIG per RRset with one active ZSK: time ≈ RRsets / sig/s. */
export function resignSeconds(rrsets: number, sigPerSec: number): number {
  return rrsets / sigPerSec;
}

export function dnssecViews(sign: SignFigure[]): DnssecView[] {
  const views: DnssecView[] = [];
  for (const s of sign) {
    if (s.threads.length === 0) continue;
    const best = s.threads.reduce((a, b) => (b.median > a.median ? b : a));
    const resign: Record<string, number> = {};
    for (const [name, n] of Object.entries(ZONE_SIZES)) resign[name] = resignSeconds(n, best.median);
    views.push({ algorithm: s.algorithm, dnssec: s.dnssec, threads: best.threads, sigPerSec: best.median, resignSeconds: resign });
  }
  return views;
}

/** "4.6 h", "12 min", "3.2 s", "40 ms": a duration a person reads at a glance. */
export function humanDuration(seconds: number): string {
  if (seconds >= 5400) return `${(seconds / 3600).toFixed(1)} h`;
  if (seconds >= 90) return `${Math.round(seconds / 60)} min`;
  if (seconds >= 10) return `${Math.round(seconds)} s`;
  if (seconds >= 1) return `${seconds.toFixed(1)} s`;
  return `${Number((seconds * 1000).toPrecision(2))} ms`;
}
