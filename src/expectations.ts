/**
 * Per-driver expectations: drivers/<id>.expect.json lists the cases a token is known not to support, and
 * why. A listed case that fails is reported as 'unsupported' with that reason; one that passes is reported
 * as an unexpected pass so that the file gets updated (web-platform-tests' model).
 *
 * Keys are "<suite>/<case>", and may end in "*" to cover a family of cases.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './paths.js';

export interface Expectation { status: 'unsupported'; why: string }
export interface ExpectationsFile { $comment?: string; cases: Record<string, Expectation> }

export class Expectations {
  constructor(readonly file: ExpectationsFile) {}

  static forDriver(id: string): Expectations {
    const path = join(projectRoot(), 'drivers', `${id}.expect.json`);
    if (!existsSync(path)) return new Expectations({ cases: {} });
    return new Expectations(JSON.parse(readFileSync(path, 'utf8')) as ExpectationsFile);
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
