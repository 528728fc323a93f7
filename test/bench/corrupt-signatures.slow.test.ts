/**
 * Only verified work counts. A shim built here (fixtures/pkcs11/corrupting-shim.c) sits in front of real
 * SoftHSM and returns broken signatures with CKR_OK: zero-length for CKM_ECDSA, every bit flipped for
 * CKM_RSA_PKCS. The benchmark must publish no throughput for either, fail the signing cases, and say why.
 * The JUnit file holds only the bench's checks that can fail, never bare measurements.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import type { DriverReport } from '../../src/results.js';
import type { SoftHsmStore } from '../../src/softhsm.js';
import { CLI, shimOverSoftHsm } from '../core/helpers.js';

const exec = promisify(execFile);

let dir: string;
let store: SoftHsmStore;
let report: DriverReport;
let bench: { drivers: { id: string; rejected: { algorithm: string; reason: string }[] }[]; records: { operation: string; algorithm: string }[] };
let action: { name: string }[];
let markdown: string;
let junit: string;
let exitCode: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-corrupt-'));
  let env: NodeJS.ProcessEnv;
  ({ store, env } = await shimOverSoftHsm('pkcs11/corrupting-shim.c', dir, 'hh-corrupt'));
  const out = join(dir, 'reports');
  exitCode = await exec('node', [CLI, 'run', '--driver', 'pkcs11', '--suite', 'bench', '--out', out], { env }).then(
    () => 0,
    (err: { code?: number }) => err.code ?? -1,
  );
  report = (JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as { drivers: DriverReport[] }).drivers[0]!;
  bench = JSON.parse(await readFile(join(out, 'bench.json'), 'utf8'));
  action = JSON.parse(await readFile(join(out, 'bench-action.json'), 'utf8'));
  markdown = await readFile(join(out, 'bench.md'), 'utf8');
  junit = await readFile(join(out, 'junit.xml'), 'utf8');
}, 240_000);

afterAll(async () => {
  await store?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('benchmark against a module whose signatures do not verify', () => {
  test('the signing cases fail with the reason, and the run exits 1', () => {
    const status = (name: string) => report.cases.find((c) => c.suite === 'bench' && c.case === name);
    expect(status('sign-ec-p256')).toMatchObject({ status: 'fail', reason: expect.stringMatching(/withheld.*do not verify.*length 0 bytes/) });
    expect(status('sign-rsa-2048')).toMatchObject({ status: 'fail', reason: expect.stringMatching(/withheld.*do not verify.*length 256 bytes/) });
    expect(exitCode).toBe(1);
  });

  test('no signing throughput is published anywhere', () => {
    const d = bench.drivers.find((x) => x.id === 'pkcs11')!;
    expect(d.rejected.map((r) => r.algorithm).sort()).toEqual(['ECDSA P-256', 'RSA-2048']);
    expect(bench.records.filter((r) => r.operation.startsWith('sign'))).toEqual([]);
    expect(action.filter((e) => e.name.startsWith('sign') || e.name.startsWith('harness/'))).toEqual([]);
    expect(markdown).toContain('No figure for ECDSA P-256');
    expect(markdown).toContain('No figure for RSA-2048');
    expect(markdown).not.toContain('Signing, one session');
  });

  test('the keys themselves were fine, so key generation and random numbers still pass', () => {
    const byName = Object.fromEntries(report.cases.filter((c) => c.suite === 'bench').map((c) => [c.case, c.status]));
    expect(byName.keygen).toBe('pass');
    expect(byName.random).toBe('pass');
    expect(report.cases.find((c) => c.suite === 'cleanup')?.status).toBe('pass');
  });

  test('JUnit holds the bench checks that can fail, and no measurement-only case', () => {
    const doc = new XMLParser({ ignoreAttributes: false }).parse(junit);
    const cases = [doc.testsuites.testsuite].flat().flatMap((s: { testcase?: unknown }) => [s.testcase ?? []].flat()) as Record<string, string>[];
    const bench = cases.filter((c) => c['@_classname'] === 'pkcs11.bench').map((c) => String(c['@_name']));
    expect(bench.sort()).toEqual(['keygen', 'ods-hsmspeed-t1', 'ods-hsmspeed-t2', 'random', 'sign-ec-p256', 'sign-rsa-2048']);
  });
});
