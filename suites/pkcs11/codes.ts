/**
 * Return codes as golden values: each error case records the exact CK_RV the token gave, and checks that
 * the specification allows that code for that function (fixtures/pkcs11/allowed-ckr.json, PKCS#11 v2.40 §5).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseHandle, SuiteContext } from '../../src/suite.js';
import { projectRoot } from '../../src/paths.js';
import { pkcs11 } from '../../src/pkcs11/module.js';
import { ckrOf } from '../../src/pkcs11/ckr.js';
import { ckrName } from '../../src/pkcs11/constants.js';

interface AllowedFile {
  source: string;
  universal: string[];
  functions: Record<string, { section: string; codes: string[] }>;
}

// PKCS#11 codes pkcs11js 2.1.7 has no constant for (pkcs11t.h).
const EXTRA_CODES: Record<string, number> = { CKR_ACTION_PROHIBITED: 0x1b, CKR_CURVE_NOT_SUPPORTED: 0x140 };

let allowed: AllowedFile | undefined;
function allowedFile(): AllowedFile {
  allowed ??= JSON.parse(readFileSync(join(projectRoot(), 'fixtures', 'pkcs11', 'allowed-ckr.json'), 'utf8')) as AllowedFile;
  return allowed;
}

function codeOf(name: string): number {
  const v = (pkcs11 as unknown as Record<string, unknown>)[name] ?? EXTRA_CODES[name];
  if (typeof v !== 'number') throw new Error(`allowed-ckr.json names unknown code ${name}`);
  return v;
}

/** Whether PKCS#11 v2.40 lets `fn` return `code`; and where that is written. */
export function allowedFor(fn: string, code: number): { allowed: boolean; where: string } {
  const f = allowedFile();
  const entry = f.functions[fn];
  if (!entry) throw new Error(`allowed-ckr.json has no entry for ${fn}`);
  const codes = [...f.universal, ...entry.codes].map(codeOf);
  return { allowed: codes.includes(code), where: `${f.source} §${entry.section}` };
}

/**
 * The call was expected to fail: record its code (case CKR and golden value), fail the case when the
 * specification does not allow the code, and note it when it is allowed but not the apt one.
 * `situation` names the golden value, e.g. "C_SignInit: key with CKA_SIGN=false".
 */
export function expectFailure(ctx: SuiteContext, c: CaseHandle, fn: string, situation: string, err: unknown, expected: number): number {
  const code = ckrOf(err);
  if (code === undefined) throw err;
  c.ckr(code);
  ctx.report.goldenCodes[`${fn}: ${situation}`] = ckrName(code);
  const { allowed: ok, where } = allowedFor(fn, code);
  if (!ok) throw new Error(`${fn} returned ${ckrName(code)} (${situation}), which ${where} does not allow`);
  if (code !== expected) {
    c.detail('expected', ckrName(expected));
    ctx.finding('deviation', `${fn} (${situation}) returned ${ckrName(code)}; allowed, but ${ckrName(expected)} is the code that says what happened`);
  }
  return code;
}
