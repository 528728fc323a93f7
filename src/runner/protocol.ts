/** Messages between the parent runner and a driver's process (JSON over the fork IPC channel). */
import type { CaseRecord, DriverReport } from '../results.js';
import type { DriverResources } from '../driver.js';

export interface WorkerRequest {
  driverId: string;
  suites: string[] | null;
  /** Suites listed in this set are run even when they are not default. */
  options: Record<string, unknown>;
}

export type WorkerMessage =
  | { type: 'phase'; phase: 'start' | 'suites' | 'stop'; timeoutMs: number }
  | { type: 'resources'; resources: DriverResources }
  | { type: 'case-start'; suite: string; case: string; timeoutMs: number }
  | { type: 'case-end'; record: CaseRecord }
  | { type: 'report'; report: DriverReport }
  | { type: 'log'; line: string }
  | { type: 'usage-error'; message: string }
  | { type: 'fatal'; message: string }
  /** A secret this driver process read or generated, so that the parent can mask it in the process's stderr. */
  | { type: 'secret'; value: string }
  | { type: 'done' };
