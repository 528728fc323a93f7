/**
 * The one result model. Every suite, every driver kind and every report format works from these types;
 * results.json is a direct serialisation of RunResults and the other reports are derived from it.
 */

/**
 * The status model (docs/status-model.md): every case of every suite ends in exactly one of these.
 * - pass: the case ran and every check held.
 * - fail: a check did not hold: the token did something the specification does not allow, contradicted what
 *   it advertises (an advertised mechanism or flag that is refused is a lie, never `unsupported`), or an
 *   unexpected error happened.
 * - unsupported: the token answered that it lacks what the case needs: it does not offer the mechanism (not in
 *   C_GetMechanismList, or the flag is absent), or a call gave a capability answer (CAPABILITY_ANSWERS), or
 *   the driver's expectations file records the gap with its evidence and the observed outcome matched it.
 * - skip: the case could not run here, for a reason that is not the token's answer: a safety flag is not set,
 *   an outside tool is missing, or a precondition another case was to provide is missing.
 * - crash: the driver's process died during the case (segfault, abort).
 * - timeout: the case did not finish in its time limit and the driver's process was killed.
 * "Expected" is not a status: it marks a fail or unsupported outcome that an entry of drivers/<id>.expect.json
 * predicted (status and code/message pattern both matched). An expected fail stays `fail` in every report but
 * does not fail the run; see Expectation in src/expectations.ts.
 */
export type CaseStatus = 'pass' | 'fail' | 'skip' | 'unsupported' | 'crash' | 'timeout';

export const CASE_STATUSES: readonly CaseStatus[] = ['pass', 'fail', 'skip', 'unsupported', 'crash', 'timeout'];

/**
 * PKCS#11 return values that answer "this token does not have that function" rather than "it went wrong"
 * (PKCS#11 v2.40 §5.1: CKR_FUNCTION_NOT_SUPPORTED; §5.7 C_SetAttributeValue: CKR_ATTRIBUTE_READ_ONLY;
 * 3.0 §5.1: CKR_ACTION_PROHIBITED, a policy that forbids the action). A case that meets one is `unsupported`.
 */
export const CAPABILITY_ANSWERS: readonly string[] = ['CKR_FUNCTION_NOT_SUPPORTED', 'CKR_ATTRIBUTE_READ_ONLY', 'CKR_ACTION_PROHIBITED'];

/** Where an expectation comes from: a reviewed run of this harness, or a public document. */
export interface ExpectationSource {
  /** 'run': observed by this harness on the token; 'document': written from a manual, issue or source file. */
  kind: 'run' | 'document';
  /** A URL (document) or a description of the run (date, versions). */
  ref: string;
}

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
  /**
   * The driver's expectations file predicted this outcome; `verified` is false while the entry is backed by a
   * document only and no run has confirmed it.
   */
  expected?: { status: 'fail' | 'unsupported'; source: ExpectationSource; verified: boolean };
  /** Small structured observations (sizes, encodings, counts). Never key material or PINs. */
  details?: Record<string, unknown>;
}

export interface Finding {
  driver: string;
  suite: string;
  /**
   * 'security' = the target accepted what it must refuse (wrong credentials): always with a failed case, and shown
   * first in every report; 'deviation' = differs from the specification; 'note' = worth knowing; 'lie' = advertised
   * but fails; 'unadvertised' = works without being advertised; 'transport' = the transport (p11-kit RPC) hides what the
   * token offers directly.
   */
  kind: 'security' | 'deviation' | 'note' | 'lie' | 'unadvertised' | 'transport';
  text: string;
}

/** Security findings of every driver, for the top of each report. */
export function securityFindings(drivers: DriverReport[]): Finding[] {
  return drivers.flatMap((d) => d.findings.filter((f) => f.kind === 'security'));
}

export interface MechanismRow {
  name: string;
  code: number;
  minKeySize: number;
  maxKeySize: number;
  flags: string[];
  /** What exercising it showed, where the suite tried, as one line: 'SIGN works; VERIFY fails: CKR_…'. */
  exercised?: string;
  /** The same per function flag: 'works', 'fails: CKR_…', 'not tried: …', 'contradicts the mechanism class (…)'. */
  exercisedFlags?: Record<string, string>;
}

/** What a transport hid (DriverReport.transport; src/pkcs11/transport.ts). */
export interface TransportReport {
  /** "p11-kit 0.24 RPC". */
  name: string;
  /** Mechanisms the token offers directly, and how many arrive through the transport. */
  direct: number;
  through: number;
  /** Mechanisms the token offers directly that do not arrive (CKM names). */
  hiddenMechanisms: string[];
  /** Capabilities recorded false that need a hidden mechanism: capability → the hidden mechanisms it needs. */
  hiddenCapabilities: Record<string, string[]>;
}

export interface SuitabilityVerdict {
  signer: string;
  suitable: boolean;
  /** Reasons it is not suitable, or caveats when it is. */
  reasons: string[];
  /**
   * What the verdict rests on: the signers suite ran the signer on this token (its version, when, and the cases
   * that decided), or only its written profile (unverified). Absent in results written before the signers suite.
   */
  basis?: { kind: 'run'; version: string; date: string; cases: string[] } | { kind: 'profile' };
}

/** "proven by run (Knot DNS 3.2.6, 2026-12-07)" or "from profile (unverified)". */
export function basisLabel(v: SuitabilityVerdict): string {
  if (v.basis?.kind === 'run') return `proven by run (${v.basis.version}, ${v.basis.date.slice(0, 10)})`;
  return 'from profile (unverified)';
}

/** The status as every report shows it: 'fail (expected)', 'unsupported (expected, unverified)', 'pass (unexpected)'. */
export function statusLabel(c: CaseRecord): string {
  if (c.expected) return `${c.status} (expected${c.expected.verified ? '' : ', unverified'})`;
  if (c.unexpectedPass) return `${c.status} (unexpected)`;
  return c.status;
}

/** 'suitable', 'not suitable', or 'not tested' when every reason is that a requirement was not tried. */
export function verdictLabel(v: SuitabilityVerdict): 'suitable' | 'not suitable' | 'not tested' {
  if (v.suitable) return 'suitable';
  // Notes and caveats accompany a verdict; only the other reasons decide between "not suitable" and "not tested".
  const deciding = v.reasons.filter((r) => !/^(note|caveat):/.test(r));
  return deciding.length > 0 && deciding.every((r) => r.startsWith('not tested')) ? 'not tested' : 'not suitable';
}

export type DriverStatus = 'ran' | 'unavailable' | 'crash' | 'timeout' | 'error';

/**
 * Suite name → the type of the section it writes. The module that defines a section's type adds it here by
 * declaration merging (bench/types.ts), so reports read a typed section without a cast and the core imports
 * no suite. A section whose type is not declared stays unknown.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging beside each section's suite
export interface SectionTypes {}
export type Sections = Partial<SectionTypes> & Record<string, unknown>;

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
  /** Sections other suites add (kmip, dkek, bench …), keyed by suite name; the known ones typed (SectionTypes). */
  sections: Sections;
  /**
   * The transport between the harness and the token (p11-kit RPC, a container), when the driver declares one, and
   * what it hides that the token offers directly (src/pkcs11/transport.ts; docs/status-model.md, "Transport findings").
   */
  transport?: TransportReport;
  /** What this driver left behind although the harness tried to remove it (objects, servers, directories). */
  leftovers?: string[];
  /** What exactly was tested (module, token, firmware, software versions); absent when the driver did not start. */
  identity?: DriverIdentity;
}

/** What the run (or an earlier, killed run) left behind, from the run journal. */
export interface RunLeftovers {
  /** The journal that still lists them (hsm-harness cleanup reads it); absent when nothing is left. */
  journal?: string;
  left: string[];
  /** Journals of earlier runs that died (kill -9) and were cleaned up at the start of this one. */
  /** `ignored`: journal lines not acted on because they named nothing this harness creates (reported once). */
  fromEarlierRuns: { journal: string; removed: boolean; left: string[]; ignored?: string[] }[];
}

/**
 * results.json format version (docs/results.schema.json, docs/results-format.md). Bump it when a field
 * changes meaning or disappears; adding a field does not need a bump. Version 2 added `identity`.
 */
export const RESULTS_SCHEMA_VERSION = 2;

/** A Debian package and its version, as dpkg reports it. */
export interface PackageVersion {
  name: string;
  version: string;
}

/**
 * The identity of one tested target, so that runs from different machines can be merged and compared.
 * Token serials are hashed unless HSM_PUBLISH_SERIALS=1 (see src/fleet/identity.ts).
 */
export interface DriverIdentity {
  /** What a reader calls the device or server: "SoftHSM project SoftHSM v2", "PyKMIP". */
  product: string;
  /** Token firmware version (CK_TOKEN_INFO.firmwareVersion), or the server's version where that is all there is. */
  firmware?: string;
  hardware?: string;
  /** The PKCS#11 module the harness loaded, with C_GetInfo's description of itself. */
  module?: {
    path: string;
    manufacturer: string;
    description: string;
    version: string;
    cryptokiVersion: string;
    package?: PackageVersion;
  };
  /** The module behind a proxy (p11-kit's server side), where the driver names it. */
  provider?: { path: string; package?: PackageVersion };
  token?: { manufacturer: string; model: string; label: string; serial: string; serialHashed: boolean };
  /** A KMIP or REST server: its product name, the executable the harness started and its package. */
  server?: { product: string; vendor?: string; executable?: string; package?: PackageVersion };
}

/** Who ran the harness, where, and from which source. */
export interface RunIdentity {
  harness: { version: string; commit?: string; dirty?: boolean };
  machine: { hostname: string; os: string; arch: string; cpus: number; cpuModel: string };
  /** HSM_RUNNER_LABELS (comma-separated), plus the CI's own runner name and run URL when present. */
  runner: { labels: string[]; name?: string; runUrl?: string };
}

export interface RunResults {
  schemaVersion: typeof RESULTS_SCHEMA_VERSION;
  tool: { name: 'hsm-harness'; version: string };
  startedAt: string;
  finishedAt: string;
  environment: { node: string; platform: string; arch: string; hostname: string; ci: boolean };
  identity: RunIdentity;
  drivers: DriverReport[];
  summary: Record<CaseStatus, number> & { total: number };
  leftovers?: RunLeftovers;
}

export function emptyDriverReport(id: string, title: string, kind: string): DriverReport {
  return {
    id,
    title,
    kind,
    available: false,
    availabilityReason: '',
    status: 'unavailable',
    info: {},
    mechanisms: [],
    capabilities: {},
    goldenCodes: {},
    suitability: [],
    findings: [],
    cases: [],
    sections: {},
  };
}

export function summarise(drivers: DriverReport[]): RunResults['summary'] {
  const s = { pass: 0, fail: 0, skip: 0, unsupported: 0, crash: 0, timeout: 0, total: 0 };
  for (const d of drivers)
    for (const c of d.cases) {
      s[c.status]++;
      s.total++;
    }
  return s;
}

/** Whether a case counts against the run: a fail the expectations file did not predict, a crash or a timeout. */
export function caseFailsRun(c: CaseRecord): boolean {
  return (c.status === 'fail' && !c.expected) || c.status === 'crash' || c.status === 'timeout';
}

/** A run "passed" when nothing failed unexpectedly, crashed or timed out. Skips, unsupported and expected fails are fine. */
export function runPassed(results: RunResults): boolean {
  return results.drivers.every((d) => (d.status === 'ran' || d.status === 'unavailable') && !d.cases.some(caseFailsRun));
}
