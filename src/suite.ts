/**
 * What a suite is, and the context it runs in. A suite is a function of the driver's connections and
 * capabilities; it never asks which driver it is running on. Suites are listed in suites/index.ts.
 */
import type { Connections, DriverTraits } from './driver.js';
import type { CaseStatus, DriverReport, ExpectationSource, Finding } from './results.js';
import type { Token } from './pkcs11/token.js';
import type { Capability } from './capabilities.js';
import type { SectionReport } from './reports/sections.js';

export interface Suite {
  name: string;
  title: string;
  /** The connection this suite needs; drivers without it do not run the suite. */
  needs: keyof Connections;
  /** Run by default (false for slow or special suites that must be asked for with --suite). */
  default?: boolean;
  /** How the section this suite writes (report.sections[name]) appears in the reports; defined beside the suite. */
  report?: SectionReport;
  run(ctx: SuiteContext): Promise<void>;
}

export interface CaseOptions {
  /** Overrides the driver's per-case time limit (ms). */
  timeoutMs?: number;
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
  env: NodeJS.ProcessEnv;
  connections: Connections;
  /** A logged-in token for drivers with a pkcs11 connection. Objects created must be tracked on it. */
  token?: Token;
  /** The driver's report being built: suites add info, mechanisms, golden codes and sections to it. */
  report: DriverReport;
  /** Run one case. Throwing fails it (a Pkcs11Error's CKR is recorded); returns the final status. */
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
   * A private temporary directory (mode 0700) recorded in the driver's resources, so that the runner removes
   * it however the run ends (crash, timeout, Ctrl-C). For files that must not outlive the run, e.g. a
   * tool's configuration holding the PIN.
   */
  tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }>;
  /** Options from the command line (e.g. bench: { quick, timeSeconds, compare }). */
  options: Record<string, unknown>;
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
