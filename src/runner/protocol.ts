/** Messages between the parent runner and a driver's process (JSON over the fork IPC channel). */
import type { CaseRecord, DriverReport } from '../results.js';
import type { DriverResources } from '../driver.js';
import type { TokenIdentity } from '../pkcs11/run-identity.js';

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

/** What the worker tells the parent's journal about objects (the parent adds the driver id). */
export type ObjectJournalEntry =
  | { t: 'token'; token: TokenIdentity; ephemeral: boolean }
  | { t: 'object'; token: TokenIdentity; id: string; label: string }
  | { t: 'object-gone'; token: TokenIdentity; id: string }
  | { t: 'labelled' | 'labelled-gone'; token: TokenIdentity; prefix: string }
  | { t: 'signer-keys'; token: TokenIdentity; signer: string; dir: string }
  | { t: 'signer-keys-gone'; token: TokenIdentity; dir: string };

export type WorkerMessage =
  | { type: 'phase'; phase: Phase; suite?: string; timeoutMs: number }
  | { type: 'resources'; resources: DriverResources }
  | { type: 'journal'; entry: ObjectJournalEntry }
  | { type: 'case-start'; suite: string; case: string; timeoutMs: number }
  | { type: 'case-end'; record: CaseRecord }
  | { type: 'report'; report: DriverReport }
  | { type: 'log'; line: string }
  | { type: 'usage-error'; message: string }
  | { type: 'fatal'; message: string }
  /** A secret this driver process read or generated, so that the parent can mask it in the process's stderr. */
  | { type: 'secret'; value: string }
  | { type: 'done' };
