/**
 * Crash and hang isolation. A real token cannot be made to segfault or hang on demand, so a deliberately
 * broken module (fixtures/fake-modules/failing-module.c, compiled here with gcc) injects the failure;
 * the real SoftHSM driver runs in the same matrix and must complete untouched.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { RunResults } from '../../src/results.js';
import { buildFixtureModule } from './helpers.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const haveGcc = existsSync('/usr/bin/gcc');
// The skip reason goes into the name, so that it reaches the JUnit XML.
const TITLE = haveGcc ? 'driver process isolation' : 'driver process isolation (skipped: /usr/bin/gcc is missing, install gcc to build the failing module)';
const tempDirs: string[] = [];

async function runWithFakeModule(mode: string, extraEnv: Record<string, string> = {}) {
  const out = await mkdtemp(join(tmpdir(), 'hh-iso-'));
  tempDirs.push(out);
  const env = {
    ...process.env,
    HSM_PKCS11_MODULE: modulePath,
    HSM_PKCS11_TOKEN: 'fake-token',
    HSM_PKCS11_PIN: 'fake-pin-1234',
    HSM_PKCS11_URI: '',
    FAKE_P11_MODE: mode,
    ...extraEnv,
  };
  const r = await exec('node', [CLI, 'run', '--driver', 'pkcs11', '--driver', 'softhsm', '--suite', 'discovery', '--out', out], { env }).then(
    (x) => ({ code: 0, ...x }),
    (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }),
  );
  const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  const xml = await readFile(join(out, 'junit.xml'), 'utf8');
  return { ...r, results, xml };
}

let modulePath = '';

describe.skipIf(!haveGcc)(TITLE, () => {
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hh-fake-'));
    tempDirs.push(dir);
    modulePath = await buildFixtureModule('fake-modules/failing-module.c', dir);
  });

  afterAll(async () => {
    for (const d of tempDirs) await rm(d, { recursive: true, force: true });
  });

  function junitCases(xml: string, suiteName: string) {
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(xml);
    const suite = [doc.testsuites.testsuite].flat().find((s: Record<string, string>) => s['@_name'] === suiteName);
    return { suite, cases: [suite.testcase].flat() };
  }

  test('a segfault inside a case is a crash record for that driver; the other driver completes', async () => {
    const r = await runWithFakeModule('segv-in-mechanisms');
    expect(r.code).toBe(1);
    const fake = r.results.drivers.find((d) => d.id === 'pkcs11')!;
    expect(fake.status).toBe('crash');
    const crash = fake.cases.find((c) => c.status === 'crash')!;
    expect(crash.suite).toBe('discovery');
    expect(crash.reason).toMatch(/SIGSEGV/);
    const soft = r.results.drivers.find((d) => d.id === 'softhsm')!;
    expect(soft.status).toBe('ran');
    expect(soft.cases.every((c) => c.status !== 'crash')).toBe(true);
    const { suite, cases } = junitCases(r.xml, 'pkcs11');
    expect(Number(suite['@_errors'])).toBeGreaterThanOrEqual(1);
    const crashed = cases.find((c: Record<string, unknown>) => c['@_name'] === crash.case);
    expect(crashed.error['@_type']).toBe('DriverCrash');
  });

  test('abort() is a crash too', async () => {
    const r = await runWithFakeModule('abort-in-mechanisms');
    expect(r.results.drivers.find((d) => d.id === 'pkcs11')!.cases.some((c) => c.status === 'crash' && /SIGABRT/.test(c.reason ?? ''))).toBe(true);
  });

  test('a crash before any suite (in C_Login) is recorded against the driver start', async () => {
    const r = await runWithFakeModule('segv-in-login');
    const fake = r.results.drivers.find((d) => d.id === 'pkcs11')!;
    expect(fake.status).toBe('crash');
    expect(fake.cases).toHaveLength(1);
    expect(fake.cases[0]!.suite).toBe('driver');
    expect(r.results.drivers.find((d) => d.id === 'softhsm')!.status).toBe('ran');
  });

  test('a module that never returns is killed at the case time limit and recorded as a timeout', async () => {
    const r = await runWithFakeModule('hang-in-mechanisms', { HSM_CASE_TIMEOUT_S: '5' });
    const fake = r.results.drivers.find((d) => d.id === 'pkcs11')!;
    expect(fake.status).toBe('timeout');
    const t = fake.cases.find((c) => c.status === 'timeout')!;
    expect(t.reason).toMatch(/did not finish within 5 s/);
    expect(r.results.drivers.find((d) => d.id === 'softhsm')!.status).toBe('ran');
    const { cases } = junitCases(r.xml, 'pkcs11');
    expect(cases.find((c: Record<string, unknown>) => c['@_name'] === t.case).error['@_type']).toBe('DriverTimeout');
    expect(r.code).toBe(1);
  });
});
