/**
 * Per-driver expectations: drivers/<id>.expect.json lists the cases a token is known not to support, and
 * why. A listed case that fails is reported as 'unsupported' with that reason; one that passes is reported
 * as an unexpected pass so that the file gets updated (web-platform-tests' model).
 *
 * Keys are "<suite>/<case>", and may end in "*" to cover a family of cases.
 *
 * `goldenCodes` holds the exact return codes this token gave for each error situation in a reviewed
 * earlier run (situation → CKR name). The run compares what it observes with them, so a firmware or module
 * update that changes a code shows up as a failed case. `hsm-harness run --update-golden` rewrites them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './paths.js';
import { writeFileAtomic } from './fsutil.js';

export interface Expectation { status: 'unsupported'; why: string }
export interface ExpectationsFile { $comment?: string; cases: Record<string, Expectation>; goldenCodes?: Record<string, string> }

export class Expectations {
  constructor(readonly file: ExpectationsFile) {}

  static forDriver(id: string): Expectations {
    const path = join(projectRoot(), 'drivers', `${id}.expect.json`);
    if (!existsSync(path)) return new Expectations({ cases: {} });
    return new Expectations(JSON.parse(readFileSync(path, 'utf8')) as ExpectationsFile);
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

  lookup(caseId: string): Expectation | undefined {
    const exact = this.file.cases[caseId];
    if (exact) return exact;
    for (const [key, e] of Object.entries(this.file.cases)) {
      if (key.endsWith('*') && caseId.startsWith(key.slice(0, -1))) return e;
    }
    return undefined;
  }
}

/** Write the observed codes into drivers/<id>.expect.json as its new golden values (other keys kept). */
export async function updateGoldenCodes(id: string, observed: Record<string, string>): Promise<string> {
  const path = join(projectRoot(), 'drivers', `${id}.expect.json`);
  const file: ExpectationsFile = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : { cases: {} };
  file.goldenCodes = Object.fromEntries(Object.entries({ ...(file.goldenCodes ?? {}), ...observed }).sort(([a], [b]) => a.localeCompare(b)));
  await writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n');
  return path;
}
