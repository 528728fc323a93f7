/**
 * What the bench suite records per driver, in DriverReport.sections.bench (and, per KMIP target, in
 * sections['bench-kmip']). The report writers in src/reports/bench.ts read only these types.
 * Times are milliseconds, rates operations per second, rme a percentage.
 */
import type { KeyAlg } from '../src/pkcs11/keys.js';

export interface LatencyStats {
  samples: number;
  mean: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
  sd: number;
  /** Relative margin of error of the mean (95 %), in percent. */
  rme: number;
}

export interface SignFigure {
  alg: KeyAlg;
  /** Human name, e.g. "RSA-2048", "ECDSA P-256". */
  algorithm: string;
  /** The DNSSEC algorithm this signing path serves (RSASHA256, ECDSAP256SHA256 …). */
  dnssec: string;
  mechanism: string;
  latency: LatencyStats;
  /** Sequential operations per second on one session (1000 / mean latency). */
  opsPerSec: number;
}

export interface KeygenFigure {
  alg: KeyAlg;
  algorithm: string;
  latency: LatencyStats;
}

export interface RandomFigure {
  bytes: number;
  latency: LatencyStats;
  opsPerSec: number;
}

/** One point of the concurrency sweep: c sessions with one C_SignAsync in flight each. */
export interface ScalingPoint {
  alg: KeyAlg;
  algorithm: string;
  concurrency: number;
  completed: number;
  wallSeconds: number;
  /** completed / wallSeconds: the aggregate rate, not tinybench's per-operation figure. */
  opsPerSec: number;
  latency: LatencyStats;
}

/** One ods-hsmspeed configuration (T threads × I signatures per thread) and the harness's figure for it. */
export interface HsmspeedRow {
  threads: number;
  iterationsPerThread: number;
  /**
   * ods-hsmspeed's figures, one per repetition, and the best of them. Other load on the machine only ever
   * slows a run down, so the fastest of several interleaved runs is the least disturbed figure for both.
   */
  ods?: { rates: number[]; best: number; line: string };
  odsError?: string;
  /** The harness with ods-hsmspeed's method: one OS thread and one session per thread, blocking C_Sign. */
  harness?: { rates: number[]; best: number };
  harnessError?: string;
  /** The same method driven with pkcs11js C_SignAsync from the event loop (T in flight), for reference. */
  harnessAsync?: { rates: number[]; best: number };
  /** harness.best / ods.best. */
  ratio?: number;
  asyncRatio?: number;
}

export interface HsmspeedSection {
  tool: string;
  /** Why the side-by-side did not run (tool missing, no loadable module). */
  skipped?: string;
  repetitions: number;
  rows: HsmspeedRow[];
}

export interface DocumentedComparison {
  operation: string;
  documented: string;
  notes: string;
  /** The harness figure it is compared with (e.g. "sign:rsa-2048"), if any. */
  measure?: string;
  measuredMs?: number;
  /** Only for a driver that declares itself the documented device family. */
  verdict?: 'within' | 'faster' | 'slower';
  suspect?: string;
}

export interface DocumentedSection {
  family: string;
  source: string;
  /** True when the driver is the documented device, so the verdicts apply. */
  applies: boolean;
  rows: DocumentedComparison[];
}

export interface DnssecView {
  algorithm: string;
  dnssec: string;
  bestConcurrency: number;
  signatures: number;
  seconds: number;
  sigPerSec: number;
  /** "Generated N signatures in T s (R sig/s)", as Cascade prints it. */
  line: string;
  /** Estimated full re-sign time (one RRSIG per RRset, one ZSK) in seconds, per zone size in RRsets. */
  resignSeconds: Record<string, number>;
}

export interface BenchSection {
  mode: 'quick' | 'full' | 'compare';
  budgetSeconds: number;
  /** Module and token versions, libuv pool size, tinybench version. */
  environment: Record<string, unknown>;
  sign: SignFigure[];
  keygen: KeygenFigure[];
  random?: RandomFigure;
  scaling: ScalingPoint[];
  hsmspeed?: HsmspeedSection;
  documented?: DocumentedSection;
  dnssec: DnssecView[];
}

/** KMIP Sign round trips against one KMIP target. */
export interface KmipBenchSection {
  mode: 'quick' | 'full' | 'compare';
  profile: string;
  sign: { algorithm: string; latency: LatencyStats; opsPerSec: number }[];
  /** Aggregate Sign round trips per second with c connections, each sending one request at a time. */
  connections?: { algorithm: string; connections: number; completed: number; wallSeconds: number; opsPerSec: number }[];
  skipped?: string;
}

export interface BenchOptions {
  quick: boolean;
  /** Total time budget per driver, seconds. */
  timeSeconds: number;
  /** Only the ods-hsmspeed side-by-side. */
  compareOnly: boolean;
}
