/**
 * What a suite is, and the context it runs in. A suite is a function of the driver's connections and
 * capabilities; it never asks which driver it is running on. Suites are listed in suites/index.ts.
 */
import type { Connections, DriverTraits } from './driver.js';
import type { CaseStatus, DriverReport, ExpectationSource, Finding } from './results.js';
import type { Token } from './pkcs11/token.js';
import type { Capability } from './capabilities.js';
import type { SectionReport } from './reports/sections.js';
import type { Limits } from './runner/limits.js';
import type { Expectations } from './expectations.js';

// biome-ignore lint/suspicious/noExplicitAny: each suite has its own state type; the runner only passes it on
export interface Suite<S = any> {
  name: string;
  title: string;
  /** The connection this suite needs; drivers without it do not run the suite. Without: every driver runs it. */
  needs?: keyof Connections;
  /** Run by default (false for slow or special suites that must be asked for with --suite). */
  default?: boolean;
  /** How the section this suite writes (report.sections[name]) appears in the reports; defined beside the suite. */
  report?: SectionReport;
  /**
   * Runs whenever its connection is there, also under --suite and --case (the runner's own checks: expectations
   * audit, golden return codes, objects restored).
   */
  always?: boolean;
  /** Before the first case: builds the state every case gets (keys cache, offered mechanisms). Throwing aborts the suite. */
  setup?(ctx: SuiteContext): S | Promise<S>;
  /** The suite as a table of named cases, run in this order (src/runner/cases.ts). */
  cases: readonly SuiteCase<S>[];
  /** After the last case, also when one failed. */
  teardown?(ctx: SuiteContext, state: S): void | Promise<void>;
}

/**
 * One named case of a suite. `needs` names earlier cases it depends on: a case of the same suite by its name, or
 * a case of an earlier suite as 'suite/case'. When one of them did not pass, this case is not run and is `skip`
 * "blocked by suite/case (status)", so one root cause is one failure; `run --case` runs them first.
 */
export interface SuiteCase<S = unknown> {
  name: string;
  needs?: readonly string[];
  /**
   * Earlier cases whose outcome this case reads without needing them to pass (a workaround tried only where the
   * as-packaged case failed): `run --case` runs them first, and they never block this case.
   */
  reads?: readonly string[];
  /** Overrides the driver's per-case time limit (ms); a function when it depends on the run (bench budget, measured rates). */
  timeoutMs?: number | ((ctx: SuiteContext, state: S) => number);
  /**
   * Before the case, outside its time limit: prepares what the case and its limit depend on (bench: ods-hsmspeed's
   * run size from a measured rate). Throwing aborts the suite, as a failing setup does.
   */
  before?(state: S, ctx: SuiteContext): Promise<void>;
  /** After the case, with its final status: what it means beyond itself (capabilities, aggregates in the state). */
  after?(status: CaseStatus, state: S, ctx: SuiteContext): void;
  /** False: the case is not part of this run at all (not recorded), e.g. a check in CI only. */
  applies?(ctx: SuiteContext, state: S): boolean;
  run(c: CaseHandle, state: S, ctx: SuiteContext): unknown;
}

export interface CaseOptions {
  /** Overrides the driver's per-case time limit (ms). */
  timeoutMs?: number;
  /** Run even after the token's session was lost for good (the cleanup check, which reconnects itself). */
  withoutSession?: boolean;
}

export interface CaseHandle {
  /** The token lacks what this case needs: stop the case, recorded as 'unsupported' with the reason. */
  unsupported(reason: string): never;
  /** The case cannot run here, and not because of the token's answer (safety flag, missing tool, missing precondition). */
  skip(reason: string): never;
  /**
   * A known defect of the module version decides this case (src/pkcs11/known-defects.ts): `fail`, expected, with
   * the reason attributing it to the module, whether or not this run's sample met the defect.
   */
  knownDefect(reason: string, source: ExpectationSource): never;
  /** Record the CK_RV this case is about. */
  ckr(code: number): void;
  /** Record a small observation (sizes, encodings). Never key material or PINs. */
  detail(key: string, value: unknown): void;
}

export interface SuiteContext {
  driverId: string;
  traits: DriverTraits;
  /** Every time limit of this run (src/runner/limits.ts). */
  limits: Limits;
  env: NodeJS.ProcessEnv;
  connections: Connections;
  /** A logged-in token for drivers with a pkcs11 connection. Objects created must be tracked on it. */
  token?: Token;
  /** The driver's report being built: suites add info, mechanisms, golden codes and sections to it. */
  report: DriverReport;
  /** Run one case (src/runner/cases.ts runs each case of a table through it). Throwing fails it (a Pkcs11Error's CKR is recorded); returns the final status. */
  case(name: string, fn: (c: CaseHandle) => unknown, opts?: CaseOptions): Promise<CaseStatus>;
  /** Record whether the token can do something (read by suitability profiles and the capability matrix). */
  capability(name: Capability, supported: boolean): void;
  /** Look up a recorded capability; undefined when no suite has tried it. */
  has(name: Capability): boolean | undefined;
  finding(kind: Finding['kind'], text: string): void;
  log(line: string): void;
  /** The current suite's name (set by the runner). */
  suite: string;
  /**
   * A private temporary directory (mode 0700) recorded in the ledger (src/ledger.ts), so that the runner removes
   * it however the run ends (crash, timeout, Ctrl-C). For files that must not outlive the run, e.g. a
   * tool's configuration holding the PIN.
   */
  tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }>;
  /** Options from the command line (e.g. bench: { quick, timeSeconds, compare }). */
  options: Record<string, unknown>;
  /** What the runner knows that its own checks (suites/checks.ts) need. */
  run: RunFacts;
}

export interface RunFacts {
  /** The driver's expectations file. */
  expectations: Expectations;
  /** Objects on the token after login, before the first suite (undefined without a token). */
  objectsBefore?: number;
  /** Running in CI (CI set). */
  ci: boolean;
  /** Every case of every suite written as a table, 'suite/case', whether this run selects it or not. */
  tableCases?: ReadonlySet<string>;
}

/** Thrown by CaseHandle.unsupported / skip / knownDefect (then with the source of the knowledge). */
export class CaseStop extends Error {
  constructor(
    readonly status: 'unsupported' | 'skip' | 'fail',
    reason: string,
    readonly knownDefect?: ExpectationSource,
  ) {
    super(reason);
    this.name = 'CaseStop';
  }
}
