/**
 * What the bench suite records per driver, in DriverReport.sections.bench (and, per KMIP target, in
 * sections['bench-kmip']). The report writers in bench/report.ts read only these types.
 * Times are milliseconds, rates operations per second, rme a percentage.
 */
import type { KeyAlg } from '../src/pkcs11/keys.js';

import type { LatencyStats } from '../src/bench-format.js';

export type { LatencyStats };

/**
 * Repeated batches of one throughput measurement. Each batch is timed as a whole (all signatures of the
 * batch / its wall time). Other load on a shared machine only ever slows a batch down, so the best batch is
 * the least disturbed figure; the median is the typical one.
 */
export interface RateFigure {
  /** Operations per second of each batch, in the order measured. */
  rates: number[];
  median: number;
  best: number;
  worst: number;
  /** Relative margin of error of the mean rate (95 %), in percent. */
  rme: number;
  /** Operations per batch (all threads together). */
  operationsPerBatch: number;
}

/** The event-loop path: `inFlight` sessions with one pkcs11js C_SignAsync outstanding each. */
export interface EventLoopFigure {
  inFlight: number;
  completed: number;
  wallSeconds: number;
  opsPerSec: number;
  latency: LatencyStats;
}

export interface SignFigure {
  alg: KeyAlg;
  /** Human name, e.g. "RSA-2048", "ECDSA P-256". */
  algorithm: string;
  /** The DNSSEC algorithm this signing path serves (RSASHA256, ECDSAP256SHA256 …). */
  dnssec: string;
  mechanism: string;
  /** Per-operation latency on one session (tinybench). */
  latency: LatencyStats;
  /** The reference: a bare pkcs11js loop on one session, in the same run, batches alternating with threads[0]. */
  bareLoop: RateFigure;
  /**
   * The harness's throughput with 1, 2, 4 … signer threads (one session each, blocking calls), all on one key;
   * above one thread, with its ratio to one thread (paired by round, see vsBareLoop).
   */
  threads: (RateFigure & { threads: number; vsOneThread?: number })[];
  /**
   * 2, 4 … signer threads with a key each (what a signer of several zones asks of the token), measured in the
   * same rounds. A token may serialise the use of one key object; this shows whether it does.
   */
  keyPerThread?: (RateFigure & { threads: number; vsOneThread?: number })[];
  /**
   * The harness's own overhead (1.0 = none): the median over rounds of threads[0]'s batch ÷ the bare loop's
   * batch of the same round.
   */
  vsBareLoop: number;
  /**
   * The machine's own speed in the same rounds: node:crypto signing with a key of the same kind on the harness's
   * thread, half a batch before and half after each round's token batches (bench/pkcs11.ts machineSigner). Its
   * rates line up with every rate figure above, round by round. Absent in runs made before it was measured.
   */
  machine?: RateFigure & { what: string };
  /** The event-loop path at the highest thread count, where measured. */
  eventLoop?: EventLoopFigure;
  /** How many of this algorithm's signatures were verified with node:crypto (all of them passed). */
  verifiedSignatures: number;
}

/** An algorithm whose benchmark signatures did not verify: it publishes no figure. */
export interface RejectedFigure {
  alg: KeyAlg;
  algorithm: string;
  reason: string;
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
  /** harness.best / ods.best. */
  ratio?: number;
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
  /** Only for a token identified as the documented device (manufacturer and model). */
  verdict?: 'within' | 'faster' | 'slower';
  suspect?: string;
}

export interface DocumentedSection {
  family: string;
  source: string;
  /** True when the token is the documented device, so the verdicts apply. */
  applies: boolean;
  /** The token's manufacturer and model, as C_GetTokenInfo reported them. */
  token: string;
  rows: DocumentedComparison[];
}

export interface DnssecView {
  algorithm: string;
  dnssec: string;
  /** Signer threads of the best throughput figure. */
  threads: number;
  sigPerSec: number;
  /** Estimated full re-sign time (one RRSIG per RRset, one ZSK) in seconds, per zone size in RRsets. */
  resignSeconds: Record<string, number>;
}

export interface BenchSection {
  mode: 'quick' | 'full' | 'compare';
  budgetSeconds: number;
  /** Module and token versions, libuv pool size, tinybench version. */
  environment: Record<string, unknown>;
  /** Signer threads tried: 1 up to the driver's maxConcurrency (and the token's free sessions). */
  threadLevels: number[];
  sign: SignFigure[];
  rejected: RejectedFigure[];
  keygen: KeygenFigure[];
  random?: RandomFigure;
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

// The sections the bench suites write, typed for every reader of DriverReport.sections (src/results.ts).
declare module '../src/results.js' {
  interface SectionTypes {
    bench: BenchSection;
    'bench-kmip': KmipBenchSection;
  }
}
