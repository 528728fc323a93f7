/**
 * End to end: `hsm-harness bench --driver softhsm --quick` on real SoftHSM and the real ods-hsmspeed writes
 * every benchmark file, the files keep their formats, and the side-by-side prints both figures and the
 * ratio. Figures are checked for structure, method and consistency only (positive, ratios computed from the
 * figures of this same run, thread counts within the driver's limit): speed is reported, never asserted.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { actionFormatProblems } from './format.js';

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');
// A canary PIN for the SoftHSM token: it must not appear in anything the command prints or writes.
const PIN = 'canary-pin-7Hq2';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec('node', [CLI, ...args], { env: { ...process.env, HSM_HARNESS_SOFTHSM_PIN: PIN }, maxBuffer: 20e6 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('hsm-harness bench --driver softhsm --quick', () => {
  let out: string;
  let run: { code: number; stdout: string; stderr: string };
  const files: Record<string, string> = {};
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'hh-bench-'));
    run = await cli(['bench', '--driver', 'softhsm', '--quick', '--out', out]);
    for (const f of await readdir(out)) files[f] = await readFile(join(out, f), 'utf8');
    // About 4 minutes alone on 2 cores, most of it the signers' 10,000-record RSA zones at the token's own
    // rate; the slow tier runs two files side by side, which can double that.
  }, 900_000);
  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  test('exits 0 and writes every benchmark file, and only those', () => {
    // The fast signers time zone signing here too; their known failures are expected entries, never a bare fail.
    const fails = run.stderr.split('\n').filter((l) => /^\S+\s+fail\s/.test(l));
    expect(fails.filter((l) => !/ — expected: /.test(l))).toEqual([]);
    expect(run.code).toBe(0);
    expect(Object.keys(files).sort()).toEqual([
      'bench-action-latency.json',
      'bench-action.json',
      'bench-documented.svg',
      'bench-throughput.svg',
      'bench.json',
      'bench.md',
    ]);
  });

  test("bench-action files keep github-action-benchmark's custom format", () => {
    for (const f of ['bench-action.json', 'bench-action-latency.json']) {
      const data = JSON.parse(files[f]!);
      expect(actionFormatProblems(data)).toEqual([]);
      expect(data.length).toBeGreaterThan(5);
      for (const e of data) {
        // Driver figures name their driver; driver-less micro-benchmarks (KMIP codec) name their component.
        expect(e.name.includes('[softhsm]') || e.name.startsWith('kmip-codec ')).toBe(true);
        expect(e.value).toBeGreaterThan(0);
      }
    }
    const units = new Set(JSON.parse(files['bench-action-latency.json']!).map((e: { unit: string }) => e.unit));
    expect([...units]).toEqual(['ms']);
  });

  test('bench.json holds raw records with driver, operation, algorithm, concurrency and samples, plus versions and the method', () => {
    const doc = JSON.parse(files['bench.json']!);
    expect(doc.environment.node).toBe(process.version);
    expect(doc.method).toMatch(/timed as a whole/);
    expect(doc.method).toMatch(/bare pkcs11js loop/);
    expect(doc.method).toMatch(/verified with node:crypto/);
    const driver = doc.drivers.find((d: { id: string }) => d.id === 'softhsm');
    expect(driver.environment.module).toMatch(/softhsm/);
    expect(driver.environment.libraryVersion).toMatch(/^\d+\.\d+$/);
    const records = doc.records as { driver: string; operation: string; algorithm: string; concurrency: number; samples: number; opsPerSec: number }[];
    for (const r of records) {
      expect(r.driver).toBe('softhsm');
      expect(r.samples).toBeGreaterThan(0);
      expect(r.opsPerSec).toBeGreaterThan(0);
    }
    const ops = new Set(records.map((r) => r.operation));
    for (const op of ['sign-latency', 'sign-bare-loop', 'sign-threads', 'sign-event-loop', 'keygen', 'random', 'ods-hsmspeed', 'hsmspeed-method'])
      expect(ops).toContain(op);
    // Signer threads from 1 up to the driver's declared maximum, never beyond.
    expect(driver.threadLevels[0]).toBe(1);
    expect(Math.max(...driver.threadLevels)).toBeLessThanOrEqual(driver.environment.maxConcurrency);
    const rsa = records.filter((r) => r.operation === 'sign-threads' && r.algorithm === 'RSA-2048').map((r) => r.concurrency);
    expect(rsa).toEqual(driver.threadLevels);
    // Every signing algorithm SoftHSM 2.6 offers through its own module.
    expect(records.filter((r) => r.operation === 'sign-bare-loop').map((r) => r.algorithm)).toEqual([
      'RSA-2048',
      'RSA-3072',
      'RSA-4096',
      'ECDSA P-256',
      'ECDSA P-384',
      'Ed25519',
    ]);
    expect(driver.rejected).toEqual([]);
  });

  test('ratios come from the figures measured in this run, and every figure was verified', () => {
    const doc = JSON.parse(files['bench.json']!);
    type Rec = {
      operation: string;
      algorithm: string;
      concurrency: number;
      opsPerSec: number;
      best: number;
      rates: number[];
      vsBareLoop?: number;
      vsOneThread?: number;
    };
    const records = doc.records as Rec[];
    for (const bare of records.filter((r) => r.operation === 'sign-bare-loop')) {
      const threads = records.filter((r) => r.operation === 'sign-threads' && r.algorithm === bare.algorithm);
      const one = threads.find((r) => r.concurrency === 1)!;
      for (const r of [bare, ...threads]) {
        expect(r.rates.length).toBeGreaterThanOrEqual(3);
        expect(r.best).toBe(Math.max(...r.rates));
        expect(r.opsPerSec).toBeGreaterThanOrEqual(Math.min(...r.rates));
        expect(r.opsPerSec).toBeLessThanOrEqual(r.best);
      }
      // Paired by round: the median of (this round's batch ÷ the reference's batch of the same round).
      const paired = (a: number[], b: number[]) => {
        const q = a.map((x, i) => x / b[i]!).sort((x, y) => x - y);
        return q.length % 2 ? q[(q.length - 1) / 2]! : (q[q.length / 2 - 1]! + q[q.length / 2]!) / 2;
      };
      expect(one.vsBareLoop).toBeCloseTo(paired(one.rates, bare.rates), 10);
      for (const t of threads.filter((r) => r.concurrency > 1)) expect(t.vsOneThread).toBeCloseTo(paired(t.rates, one.rates), 10);
      // The same thread counts again with a key per thread, measured in the same rounds, wherever a key pair
      // is quick enough to make (on SoftHSM ECDSA P-256 always is).
      const keyEach = records.filter((r) => r.operation === 'sign-threads-key-each' && r.algorithm === bare.algorithm);
      const levels = threads.filter((r) => r.concurrency > 1).map((r) => r.concurrency);
      if (bare.algorithm === 'ECDSA P-256' || keyEach.length) expect(keyEach.map((r) => r.concurrency)).toEqual(levels);
      for (const t of keyEach) {
        expect(t.rates.length).toBe(one.rates.length);
        expect(t.vsOneThread).toBeCloseTo(paired(t.rates, one.rates), 10);
      }
    }
    const action = JSON.parse(files['bench-action.json']!) as { name: string; value: number; unit: string }[];
    const ratios = action.filter((e) => e.name.startsWith('harness/bare-loop[softhsm]'));
    expect(ratios.map((e) => e.name)).toContain('harness/bare-loop[softhsm] ECDSA P-256');
    for (const e of ratios) expect(e.unit).toBe('ratio');
    const driver = doc.drivers.find((d: { id: string }) => d.id === 'softhsm');
    expect(driver.rejected).toEqual([]);
    expect(run.stdout).toMatch(
      /softhsm: sign ECDSA P-256: one session [\d.]+ sig\/s, bare pkcs11js loop [\d.]+ sig\/s, ratio [\d.]+, 2 threads on one key [\d.]+ sig\/s \([\d.]+× one thread\).*, 2 threads with a key each [\d.]+ sig\/s \([\d.]+× one thread\)/,
    );
  });

  test('ods-hsmspeed side by side: both figures and the ratio, for 1 and 2 threads', () => {
    const doc = JSON.parse(files['bench.json']!);
    const rows = doc.drivers[0].hsmspeed.rows as { threads: number; ods: { best: number; line: string }; harness: { best: number }; ratio: number }[];
    expect(rows.map((r) => r.threads)).toEqual([1, 2]);
    for (const r of rows) {
      expect(r.ods.best).toBeGreaterThan(0);
      expect(r.harness.best).toBeGreaterThan(0);
      expect(r.ratio).toBeCloseTo(r.harness.best / r.ods.best, 10);
      expect(r.ods.line).toMatch(/^\d+ threads?, \d+ signatures per thread, \d+\.\d\d sig\/s \(RSA 2048 bits\)$/);
    }
    expect(run.stdout).toMatch(/softhsm: 1 thread, \d+ signatures per thread: ods-hsmspeed [\d.]+ sig\/s, harness [\d.]+ sig\/s, ratio [\d.]+/);
    expect(run.stdout).toMatch(/softhsm: 2 threads, \d+ signatures per thread: ods-hsmspeed [\d.]+ sig\/s, harness [\d.]+ sig\/s, ratio [\d.]+/);
  });

  test('bench.md states the method and has the tables, the DNSSEC view and the documented table as a reference', () => {
    const md = files['bench.md']!;
    expect(md).toMatch(/timed as a whole/);
    expect(md).toContain('Signing, one session');
    expect(md).toContain('bare pkcs11js loop');
    expect(md).toContain('Signer threads');
    expect(md).toContain('Event-loop path (C_SignAsync)');
    expect(md).toContain('DNSSEC view');
    expect(md).not.toMatch(/in 0s/);
    expect(md).toContain('Side by side with ods-hsmspeed');
    expect(md).toMatch(/Reference only: the token \(SoftHSM project [^)]*\) is not a CardContact smartcard-hsm/);
    expect(md).toContain('RSA 3072 Key Gen');
    // One notes column: the reference table has no verdict column and no duplicate.
    const head = md.split('\n').find((l) => l.startsWith('| Operation | Documented'))!;
    expect(head).toBe('| Operation | Documented | Measured | Notes |');
    expect(md).not.toMatch(/seed|\.md §/);
  });

  test('the charts parse as SVG with axes and one softhsm series per panel', () => {
    const parser = new XMLParser({ ignoreAttributes: false });
    expect(XMLValidator.validate(files['bench-throughput.svg']!)).toBe(true);
    const tp = parser.parse(files['bench-throughput.svg']!);
    const panels = [tp.svg.g].flat().filter((g: Record<string, string>) => g['@_class'] === 'panel');
    expect(panels.length).toBe(6);
    expect(files['bench-throughput.svg']).toContain('signer threads');
    expect(files['bench-documented.svg']).not.toMatch(/seed/);
    for (const p of panels) {
      const groups = [p.g].flat();
      expect(groups.some((g: Record<string, string>) => g['@_class'] === 'axis x-axis')).toBe(true);
      expect(groups.some((g: Record<string, string>) => g['@_class'] === 'axis y-axis')).toBe(true);
      expect(groups.filter((g: Record<string, string>) => g['@_class'] === 'series').map((g: Record<string, string>) => g['@_data-driver'])).toEqual([
        'softhsm',
      ]);
    }
    expect(XMLValidator.validate(files['bench-documented.svg']!)).toBe(true);
    const doc = parser.parse(files['bench-documented.svg']!);
    const rows = [doc.svg.g].flat().filter((g: Record<string, string>) => g['@_class'] === 'row');
    expect(rows.length).toBeGreaterThan(5);
  });

  test('the PIN appears nowhere', () => {
    for (const text of [run.stdout, run.stderr, ...Object.values(files)]) expect(text).not.toContain(PIN);
  });
});

describe('hsm-harness bench: bad input', () => {
  test.each([
    [['--time', 'soon'], /--time/],
    [['--time', '0'], /--time/],
    [['--compare', 'p11speed'], /--compare/],
  ])('%j is a one-line usage error (exit 2)', async (args, msg) => {
    const never = join(tmpdir(), `hh-bench-never-${process.pid}`);
    const r = await cli(['bench', ...args, '--out', never]);
    expect(r.code).toBe(2);
    expect(existsSync(never), 'nothing written for bad input').toBe(false);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(msg);
  });
});
