/**
 * The one result model. Every suite, every driver kind and every report format works from these types;
 * results.json is a direct serialisation of RunResults and the other reports are derived from it.
 */

/**
 * - pass: the case ran and every assertion held.
 * - fail: an assertion failed, or the token did something the specification does not allow.
 * - skip: the case could not run here (driver unavailable, a safety flag not set); `reason` says why.
 * - unsupported: the token lacks the capability the case needs, or the driver's expectations file records
 *   that it is known not to support it. Not a failure.
 * - crash: the driver's process died during the case (segfault, abort).
 * - timeout: the case did not finish in its time limit and the driver's process was killed.
 */
export type CaseStatus = 'pass' | 'fail' | 'skip' | 'unsupported' | 'crash' | 'timeout';

export interface CaseRecord {
  driver: string;
  suite: string;
  case: string;
  status: CaseStatus;
  /** CK_RV returned where the case is about a PKCS#11 call (numeric and name). */
  ckr?: { code: number; name: string };
  durationMs: number;
  /** Why it failed, was skipped or is unsupported. One line, redacted. */
  reason?: string;
  /** The expectations file named this case, and it passed anyway: update the file. */
  unexpectedPass?: boolean;
  /** Small structured observations (sizes, encodings, counts). Never key material or PINs. */
  details?: Record<string, unknown>;
}

export interface Finding {
  driver: string;
  suite: string;
  /** 'deviation' = differs from the specification; 'note' = worth knowing; 'lie' = advertised but fails. */
  kind: 'deviation' | 'note' | 'lie' | 'unadvertised';
  text: string;
}

export interface MechanismRow {
  name: string;
  code: number;
  minKeySize: number;
  maxKeySize: number;
  flags: string[];
  /** What exercising it showed, where the suite tried: 'works', 'fails: CKR_…', or undefined (not tried). */
  exercised?: string;
}

export interface SuitabilityVerdict {
  signer: string;
  suitable: boolean;
  /** Reasons it is not suitable, or caveats when it is. */
  reasons: string[];
}

/** 'suitable', 'not suitable', or 'not tested' when every reason is that a requirement was not tried. */
export function verdictLabel(v: SuitabilityVerdict): 'suitable' | 'not suitable' | 'not tested' {
  if (v.suitable) return 'suitable';
  // Notes and caveats accompany a verdict; only the other reasons decide between "not suitable" and "not tested".
  const deciding = v.reasons.filter((r) => !/^(note|caveat):/.test(r));
  return deciding.length > 0 && deciding.every((r) => r.startsWith('not tested')) ? 'not tested' : 'not suitable';
}

export type DriverStatus = 'ran' | 'unavailable' | 'crash' | 'timeout' | 'error';

export interface DriverReport {
  id: string;
  title: string;
  kind: string;
  available: boolean;
  /** Why the driver is unavailable, or how it was reached when available. */
  availabilityReason: string;
  status: DriverStatus;
  statusReason?: string;
  startedAt?: string;
  durationMs?: number;
  /** Library, slot and token description, or server information for KMIP targets. */
  info: Record<string, unknown>;
  mechanisms: MechanismRow[];
  /** capability name → supported? Produced by the suites, read by the suitability profiles and reports. */
  capabilities: Record<string, boolean>;
  /** Exact return codes observed for error cases, per token ("golden" values). */
  goldenCodes: Record<string, string>;
  suitability: SuitabilityVerdict[];
  findings: Finding[];
  cases: CaseRecord[];
  /** Sections other suites add (kmip, dkek, bench …), keyed by suite name. */
  sections: Record<string, unknown>;
  /** What this driver left behind although the harness tried to remove it (objects, servers, directories). */
  leftovers?: string[];
}

/** What the run (or an earlier, killed run) left behind, from the run journal. */
export interface RunLeftovers {
  /** The journal that still lists them (hsm-harness cleanup reads it); absent when nothing is left. */
  journal?: string;
  left: string[];
  /** Journals of earlier runs that died (kill -9) and were cleaned up at the start of this one. */
  fromEarlierRuns: { journal: string; removed: boolean; left: string[] }[];
}

export interface RunResults {
  schemaVersion: 1;
  tool: { name: 'hsm-harness'; version: string };
  startedAt: string;
  finishedAt: string;
  environment: { node: string; platform: string; arch: string; hostname: string; ci: boolean };
  drivers: DriverReport[];
  summary: Record<CaseStatus, number> & { total: number };
  leftovers?: RunLeftovers;
}

export function emptyDriverReport(id: string, title: string, kind: string): DriverReport {
  return {
    id, title, kind,
    available: false, availabilityReason: '', status: 'unavailable',
    info: {}, mechanisms: [], capabilities: {}, goldenCodes: {}, suitability: [], findings: [], cases: [], sections: {},
  };
}

export function summarise(drivers: DriverReport[]): RunResults['summary'] {
  const s = { pass: 0, fail: 0, skip: 0, unsupported: 0, crash: 0, timeout: 0, total: 0 };
  for (const d of drivers) for (const c of d.cases) { s[c.status]++; s.total++; }
  return s;
}

/** A run "passed" when nothing failed, crashed or timed out. Skips and unsupported cases are fine. */
export function runPassed(results: RunResults): boolean {
  const s = results.summary;
  return s.fail === 0 && s.crash === 0 && s.timeout === 0
    && results.drivers.every((d) => d.status === 'ran' || d.status === 'unavailable');
}
