/**
 * Issue 21: a token that loses the login with an error (a SmartCard-HSM through OpenSC answered C_SetAttributeValue
 * with CKR_GENERAL_ERROR and had logged out) must be one failure, not one per later case. The shim
 * fixtures/pkcs11/logout-shim.c in front of a real SoftHSM does exactly that once, on keygen/set-label; the
 * runner notices the lost login with C_GetSessionInfo after the case, logs in again, says so on that case and in a
 * note, and every later case (keygen's create-object, a whole later suite, the cleanup check) runs as usual.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DriverReport } from '../../src/results.js';
import type { SoftHsmStore } from '../../src/softhsm.js';
import { CLI, shimOverSoftHsm } from '../core/helpers.js';

const exec = promisify(execFile);

let dir: string;
let store: SoftHsmStore;
let report: DriverReport;
let exitCode: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-session-restored-'));
  let env: NodeJS.ProcessEnv;
  ({ store, env } = await shimOverSoftHsm('pkcs11/logout-shim.c', dir, 'hh-session-restored', { CI: '' }));
  exitCode = await exec('node', [CLI, 'run', '--driver', 'pkcs11', '--suite', 'keygen', '--suite', 'sessions', '--out', dir], { env }).then(
    () => 0,
    (err: { code?: number }) => err.code ?? -1,
  );
  report = (JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as { drivers: DriverReport[] }).drivers[0]!;
}, 300_000);

afterAll(async () => {
  await store?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a login lost with an error is one failure; the harness logs in again and goes on', () => {
  test('exactly one case fails: the one whose call lost the login', () => {
    expect(exitCode).toBe(1);
    const failed = report.cases.filter((c) => c.status !== 'pass' && c.status !== 'unsupported' && c.status !== 'skip');
    expect(failed.map((c) => `${c.suite}/${c.case}`)).toEqual(['keygen/set-label']);
    expect(failed[0]!.ckr?.name).toBe('CKR_GENERAL_ERROR');
  });

  test('the case after which the login was found lost says so, and a note records it', () => {
    const setLabel = report.cases.find((c) => c.case === 'set-label')!;
    expect(setLabel.details?.sessionRestored).toMatch(/the login was lost.*logged in again/);
    expect(report.findings.some((f) => f.kind === 'note' && /login was lost .*during keygen\/set-label/.test(f.text))).toBe(true);
  });

  test('the cases after it, which need the login, ran and passed (a private key import, a later suite, cleanup)', () => {
    const status = (id: string) => report.cases.find((c) => `${c.suite}/${c.case}` === id)?.status;
    expect(status('keygen/create-object/private')).toBe('pass');
    expect(report.cases.filter((c) => c.suite === 'sessions' && c.status === 'pass').length).toBeGreaterThan(0);
    expect(report.cases.filter((c) => c.suite === 'sessions').every((c) => c.status !== 'fail')).toBe(true);
    expect(status('cleanup/objects-restored')).toBe('pass');
  });
});
