/**
 * Known defects of PKCS#11 module versions, as data. A defect that strikes at random (a fraction of signatures)
 * must not make the verdict depend on this run's sample: when the module under test is a version that has the
 * defect, the cases it can strike are `fail`, expected, attributed to the module with the observed N of M,
 * whether or not this run met it (docs/status-model.md, "Known defects of a module"). Case ids are
 * "<suite>/<case>". A defect of one token rather than of a module version belongs in drivers/<id>.expect.json.
 */
import type { ExpectationSource } from '../results.js';

export interface KnownDefect {
  /** The module that has it: C_GetInfo manufacturerID (a regular expression) and the first fixed version, if any. */
  module: { name: string; manufacturer: string; fixedIn?: { major: number; minor: number } };
  /** The cases whose verdict the defect decides. */
  cases: string[];
  /** Other cases a hit can strike: there a hit is tried again (at most RETRIES times), since `cases` carry the verdict. */
  alsoStrikes?: string[];
  /** The return value a hit gives. */
  code: string;
  /** One line for the reports, with the upstream references. */
  why: string;
  source: ExpectationSource;
}

export const KNOWN_DEFECTS: readonly KnownDefect[] = [
  {
    module: { name: 'OpenSC', manufacturer: 'OpenSC', fixedIn: { major: 0, minor: 26 } },
    cases: ['signing/ecdsa-length/ec-p521'],
    alsoStrikes: ['signing/CKM_ECDSA/ec-p521'],
    code: 'CKR_DATA_INVALID',
    why:
      'OpenSC before 0.26 rejects some P-521 signatures of a SmartCard-HSM (those whose halves need 65 bytes) with CKR_DATA_INVALID ' +
      '(OpenSC issues #2421 and #2623, fixed by PR #3157 in OpenSC 0.26.0)',
    source: { kind: 'document', ref: 'https://github.com/OpenSC/OpenSC/pull/3157' },
  },
];

export interface ModuleInfo {
  manufacturerID: string;
  libraryVersion: { major: number; minor: number };
}

/** How often a case in `alsoStrikes` tries again after a hit. */
export const RETRIES = 3;

/**
 * The known defect of this module version that decides `caseId` (or, with `also`, that can strike it while other
 * cases carry the verdict), with the module named as a reader calls it.
 */
export function knownDefectFor(info: ModuleInfo, caseId: string, also = false): (KnownDefect & { moduleLabel: string }) | undefined {
  const v = info.libraryVersion;
  const d = KNOWN_DEFECTS.find(
    (k) =>
      (also ? (k.alsoStrikes ?? []) : k.cases).includes(caseId) &&
      new RegExp(k.module.manufacturer, 'i').test(info.manufacturerID) &&
      (!k.module.fixedIn || v.major < k.module.fixedIn.major || (v.major === k.module.fixedIn.major && v.minor < k.module.fixedIn.minor)),
  );
  return d && { ...d, moduleLabel: `${d.module.name} ${v.major}.${v.minor}` };
}
