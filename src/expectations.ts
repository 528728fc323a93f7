/**
 * Per-driver expectations, in the manner of web-platform-tests' expectation files: drivers/<id>.expect.json
 * names cases whose outcome on that token is known, each with
 *   status   'unsupported' (a capability the token lacks) or 'fail' (a known defect of the token or its module),
 *   code     the CKR name the case records, and/or
 *   message  a regular expression the case's reason must match,
 *   why      one line for the reports,
 *   source   { kind: 'run' | 'document', ref }: a reviewed run of this harness, or a public document (URL).
 * An entry applies only when the observed outcome matches it: an observed fail or unsupported whose code and
 * message match. Then the case gets `expected` (an expected fail stays `fail` but does not fail the run;
 * an `unsupported` entry records the gap as unsupported). Entries from documents are unverified until a run
 * confirms them, and the reports say so. A listed case that passes is an unexpected pass; an entry whose case
 * ran with another outcome, or that names no case of a suite that ran, is stale. Both are reported, and fail
 * a CI run (CI=true) unless the run records new golden data (--update-golden). See docs/status-model.md.
 *
 * Keys are "<suite>/<case>", and may end in "*" to cover a family of cases.
 *
 * `extends` names another driver whose file this one builds on (the same token software reached another way, e.g.
 * the bridge built in a container): its cases apply, this file's own cases replace entries of the same key, and
 * its golden codes are used until this file records its own. One level only.
 *
 * `goldenCodes` holds the exact return codes this token gave for each error situation in a reviewed
 * earlier run (situation → CKR name). The run compares what it observes with them, so a firmware or module
 * update that changes a code shows up as a failed case. `hsm-harness run --update-golden` rewrites them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './paths.js';
import { writeFileAtomic } from './fsutil.js';
import { INPUT_LIMITS, readInputFileSync } from './input.js';
import { UsageError } from './errors.js';
import type { CaseRecord, ExpectationSource } from './results.js';

export interface Expectation {
  status: 'unsupported' | 'fail';
  /** CKR name the case must have recorded. */
  code?: string;
  /** Regular expression the case's reason must match. */
  message?: string;
  why: string;
  source: ExpectationSource;
}
export interface ExpectationsFile {
  $comment?: string;
  /** Another driver's id whose expectations this file builds on (one level). */
  extends?: string;
  cases: Record<string, Expectation>;
  goldenCodes?: Record<string, string>;
}

/** What the run made of the expectations file: reported in results.json (sections.expectations) and the reports. */
export interface ExpectationsAudit {
  /** Listed cases that passed. */
  unexpectedPasses: string[];
  /** Entries whose case ran with an outcome the entry does not describe: key → what was observed. */
  stale: { key: string; observed: string }[];
  /** Entries that name no case of a suite that ran (a typo, or a case that was renamed or removed). */
  unknown: string[];
  /**
   * Entries naming a case of a suite's table that this run did not select (a full-matrix case in a quick run, a
   * case --case left out): neither confirmed nor contradicted, so not a problem.
   */
  notRun: string[];
  /** Entries from documents that this run confirmed: their source can become this run. */
  confirmed: string[];
  /** Entries from documents not confirmed by any run yet. */
  unverified: string[];
}

function validate(path: string, file: ExpectationsFile): ExpectationsFile {
  const bad = (key: string, what: string) => new UsageError(`${path}: entry "${key}" ${what}; see docs/status-model.md for the format`);
  for (const [key, e] of Object.entries(file.cases ?? {})) {
    if (e.status !== 'unsupported' && e.status !== 'fail') throw bad(key, `has status ${JSON.stringify(e.status)}, expected "unsupported" or "fail"`);
    if (!e.code && !e.message) throw bad(key, 'states neither the expected code nor a message pattern');
    if (e.message !== undefined) {
      try {
        new RegExp(e.message);
      } catch {
        throw bad(key, `has an invalid message pattern ${JSON.stringify(e.message)}`);
      }
    }
    if (!e.why) throw bad(key, 'gives no reason ("why")');
    if (!e.source || (e.source.kind !== 'run' && e.source.kind !== 'document') || !e.source.ref)
      throw bad(key, 'needs a source { kind: "run" | "document", ref }');
    if (e.source.kind === 'document' && !/^https?:\/\//.test(e.source.ref)) throw bad(key, 'is from a document but its source ref is not a URL');
  }
  return { ...file, cases: file.cases ?? {} };
}

export class Expectations {
  /** Per entry key: the outcomes of the cases it named in this run. */
  private readonly seen = new Map<string, { caseId: string; outcome: 'applied' | 'passed' | 'mismatch' | 'not reached'; observed: string }[]>();

  constructor(
    readonly file: ExpectationsFile,
    readonly path = 'expectations',
  ) {
    this.file = validate(path, file);
  }

  static forDriver(id: string): Expectations {
    const path = join(projectRoot(), 'drivers', `${id}.expect.json`);
    if (!existsSync(path)) return new Expectations({ cases: {} }, path);
    const file = readExpectationsFile(path);
    if (file.extends === undefined) return new Expectations(file, `drivers/${id}.expect.json`);
    return new Expectations(extendedFile(`drivers/${id}.expect.json`, file), `drivers/${id}.expect.json (extends drivers/${file.extends}.expect.json)`);
  }

  /** Observed codes that differ from the golden ones; situations not tried in this run are not compared. */
  goldenDifferences(observed: Record<string, string>): { situation: string; golden: string; observed: string }[] {
    const out = [];
    for (const [situation, golden] of Object.entries(this.file.goldenCodes ?? {})) {
      const now = observed[situation];
      if (now !== undefined && now !== golden) out.push({ situation, golden, observed: now });
    }
    return out;
  }

  /** The entry (and its key) for a case id: an exact key first, then the first matching "prefix*" key. */
  lookup(caseId: string): (Expectation & { key: string }) | undefined {
    const exact = this.file.cases[caseId];
    if (exact) return { ...exact, key: caseId };
    for (const [key, e] of Object.entries(this.file.cases)) {
      if (key.endsWith('*') && caseId.startsWith(key.slice(0, -1))) return { ...e, key };
    }
    return undefined;
  }

  /** Whether an entry describes an observed outcome: same status class, and its code and message match. */
  static matches(e: Expectation, record: CaseRecord): boolean {
    if (record.status !== 'fail' && record.status !== 'unsupported') return false;
    // An `unsupported` entry may describe a case that failed (the known gap shows as an error);
    // a `fail` entry only a failure: a token that now answers "unsupported" has changed.
    if (e.status === 'fail' && record.status !== 'fail') return false;
    if (e.code && record.ckr?.name !== e.code) return false;
    if (e.message && !new RegExp(e.message).test(record.reason ?? '')) return false;
    return true;
  }

  /** Apply the entry for this case, if any, to the finished record (mutates it) and remember the outcome for audit(). */
  apply(caseId: string, record: CaseRecord): void {
    const e = this.lookup(caseId);
    if (!e) return;
    const list = this.seen.get(e.key) ?? [];
    this.seen.set(e.key, list);
    const observed = `${record.status}${record.ckr ? ` ${record.ckr.name}` : ''}${record.reason ? `: ${record.reason}` : ''}`;
    if (record.status === 'pass') {
      record.unexpectedPass = true;
      record.reason = `passed although ${this.path} says: ${e.why}`;
      list.push({ caseId, outcome: 'passed', observed });
    } else if (Expectations.matches(e, record)) {
      const verified = e.source.kind === 'run';
      record.expected = { status: e.status, source: e.source, verified };
      record.status = e.status;
      record.reason = `expected${verified ? '' : ' (unverified: from a document)'}: ${e.why} (observed: ${record.reason ?? record.ckr?.name ?? 'no reason'})`;
      list.push({ caseId, outcome: 'applied', observed });
    } else if (record.status === 'fail' || record.status === 'unsupported') {
      list.push({ caseId, outcome: 'mismatch', observed });
    } else {
      list.push({ caseId, outcome: 'not reached', observed });
    }
  }

  /**
   * What this run made of the file. `suitesRun` decides which entries could have matched a case; `tableCases`
   * ('suite/case') are every case of the suites written as tables, selected in this run or not: an entry naming
   * one of them that did not run is `notRun`, not `unknown`. Only an entry whose case ran and did not match is stale.
   */
  audit(suitesRun: ReadonlySet<string>, tableCases: ReadonlySet<string> = new Set()): ExpectationsAudit {
    const a: ExpectationsAudit = { unexpectedPasses: [], stale: [], unknown: [], notRun: [], confirmed: [], unverified: [] };
    const namesTableCase = (key: string) => (key.endsWith('*') ? [...tableCases].some((id) => id.startsWith(key.slice(0, -1))) : tableCases.has(key));
    for (const [key, e] of Object.entries(this.file.cases)) {
      const outcomes = this.seen.get(key) ?? [];
      if (outcomes.length === 0) {
        if (namesTableCase(key)) a.notRun.push(key);
        else if (suitesRun.has(key.split('/')[0]!)) a.unknown.push(key);
      }
      for (const o of outcomes) {
        if (o.outcome === 'passed') a.unexpectedPasses.push(o.caseId);
        if (o.outcome === 'mismatch') a.stale.push({ key, observed: `${o.caseId}: ${o.observed}` });
      }
      const applied = outcomes.some((o) => o.outcome === 'applied');
      if (e.source.kind === 'document') (applied ? a.confirmed : a.unverified).push(key);
    }
    return a;
  }
}

/** Problems an audit reports: unexpected passes, stale entries and entries that name no case. */
export function auditProblems(a: ExpectationsAudit): string[] {
  return [
    ...a.unexpectedPasses.map((c) => `unexpected pass: ${c}`),
    ...a.stale.map((s) => `stale entry ${s.key} (observed ${s.observed})`),
    ...a.unknown.map((k) => `entry ${k} names no case of this run`),
  ];
}

/** A file with `extends`: the base driver's entries, then this file's own; golden codes this file's own, else the base's. */
function extendedFile(label: string, file: ExpectationsFile): ExpectationsFile {
  const baseId = file.extends!;
  const basePath = join(projectRoot(), 'drivers', `${baseId}.expect.json`);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(baseId) || !existsSync(basePath)) {
    throw new UsageError(`${label}: "extends" names ${JSON.stringify(baseId)}, which has no drivers/<id>.expect.json; name an existing driver's file`);
  }
  const base = readExpectationsFile(basePath);
  if (base.extends !== undefined) throw new UsageError(`${label}: extends drivers/${baseId}.expect.json, which extends another file; extend its base directly`);
  const goldenCodes = file.goldenCodes ?? base.goldenCodes;
  return { ...(goldenCodes ? { goldenCodes } : {}), cases: { ...(base.cases ?? {}), ...(file.cases ?? {}) } };
}

/** An expectations file, bounded like every hand-written file the harness reads (INPUT_LIMITS.config). */
function readExpectationsFile(path: string): ExpectationsFile {
  return JSON.parse(readInputFileSync(path, INPUT_LIMITS.config, 'expectations file').toString('utf8')) as ExpectationsFile;
}

/** Write the observed codes into drivers/<id>.expect.json as its new golden values (other keys kept). */
export async function updateGoldenCodes(id: string, observed: Record<string, string>): Promise<string> {
  const path = join(projectRoot(), 'drivers', `${id}.expect.json`);
  const file: ExpectationsFile = existsSync(path) ? readExpectationsFile(path) : { cases: {} };
  file.goldenCodes = Object.fromEntries(Object.entries({ ...(file.goldenCodes ?? {}), ...observed }).sort(([a], [b]) => a.localeCompare(b)));
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
  return path;
}
