/**
 * Every time limit of a driver's run, in one place: the parent's watchdog (run.ts) and the driver's process
 * (worker.ts, context.ts) both read them from here. HSM_CASE_TIMEOUT_S lets an operator tighten (or, for slow
 * cards, widen) the per-case limit; it then bounds a suite's own code and the driver's start as well.
 */
import type { DriverTraits } from '../driver.js';
import { UsageError } from '../errors.js';

export interface Limits {
  /** One case, unless the case sets its own (SuiteCase.timeoutMs). */
  caseMs: number;
  /** A suite's own code outside its cases (setup, between cases, teardown), and the runner's checks. */
  setupMs: number;
  /** The driver's start (servers, containers, tokens). */
  startMs: number;
  /** Stopping the driver. */
  stopMs: number;
}

const DEFAULT_START_MS = 180_000;
const STOP_MS = 60_000;

/** HSM_CASE_TIMEOUT_S in ms; undefined when unset. Anything but a positive number is bad input. */
export function caseTimeoutOverrideMs(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env.HSM_CASE_TIMEOUT_S;
  if (raw === undefined || raw === '') return undefined;
  if (!(/^\d+(\.\d+)?$/.test(raw) && Number(raw) > 0)) {
    throw new UsageError(`HSM_CASE_TIMEOUT_S must be a number of seconds greater than 0, got "${raw}"; unset it to use each driver's own limit`);
  }
  return Number(raw) * 1000;
}

export function limitsFor(traits: DriverTraits, env: NodeJS.ProcessEnv): Limits {
  const override = caseTimeoutOverrideMs(env);
  if (override !== undefined) return { caseMs: override, setupMs: override, startMs: override, stopMs: STOP_MS };
  return {
    caseMs: traits.caseTimeoutMs,
    setupMs: traits.setupTimeoutMs ?? traits.caseTimeoutMs,
    startMs: Math.max(traits.caseTimeoutMs, traits.startTimeoutMs ?? DEFAULT_START_MS),
    stopMs: STOP_MS,
  };
}
