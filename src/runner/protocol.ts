/** Messages between the parent runner and a driver's process (JSON over the fork IPC channel). */
import type { CaseRecord, DriverReport } from '../results.js';
import type { LedgerChange } from '../ledger.js';

export interface WorkerRequest {
  driverId: string;
  suites: string[] | null;
  /** --case patterns: only the matching cases and what they need run (src/runner/cases.ts). */
  cases: string[] | null;
  /** Suites listed in this set are run even when they are not default. */
  options: Record<string, unknown>;
  /** The run's CKA_ID prefix (8 bytes, hex): every object this driver creates carries it. */
  runPrefix: string;
}

/**
 * The phases of a worker. Each one is bounded by the parent's watchdog, which is never disarmed: 'setup' is
 * a suite's own code outside its cases (before the first, between two, after the last).
 */
export type Phase = 'start' | 'open' | 'setup' | 'golden' | 'cleanup' | 'stop';

export type WorkerMessage =
  | { type: 'phase'; phase: Phase; suite?: string; timeoutMs: number }
  /** Every change of the worker's ledger (src/ledger.ts), as it happens; the parent's DriverLedger journals it. */
  | { type: 'ledger'; change: LedgerChange }
  | { type: 'case-start'; suite: string; case: string; timeoutMs: number }
  | { type: 'case-end'; record: CaseRecord }
  | { type: 'report'; report: DriverReport }
  | { type: 'log'; line: string }
  | { type: 'usage-error'; message: string }
  | { type: 'fatal'; message: string }
  /** A secret this driver process read or generated, so that the parent can mask it in the process's stderr. */
  | { type: 'secret'; value: string }
  | { type: 'done' };
