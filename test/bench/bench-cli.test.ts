/**
 * End to end: `hsm-harness bench --driver softhsm --quick` on real SoftHSM and the real ods-hsmspeed writes
 * every benchmark file, the files keep their formats, and the side-by-side prints both figures and the
 * ratio. Figures are checked for being positive numbers only: speed is reported, never asserted.
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
  }, 150_000);
  afterAll(async () => { if (out) await rm(out, { recursive: true, force: true }); });

  test('exits 0 and writes every benchmark file, and only those', () => {
    expect(run.stderr).not.toMatch(/\bfail\b/);
    expect(run.code).toBe(0);
    expect(Object.keys(files).sort()).toEqual(['bench-action-latency.json', 'bench-action.json', 'bench-documented.svg', 'bench-throughput.svg', 'bench.json', 'bench.md']);
  });

  test('bench-action files keep github-action-benchmark\'s custom format', () => {
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

  test('bench.json holds raw records with driver, operation, algorithm, concurrency and samples, plus versions', () => {
    const doc = JSON.parse(files['bench.json']!);
    expect(doc.environment.node).toBe(process.version);
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
    for (const op of ['sign', 'sign-concurrent', 'keygen', 'random', 'ods-hsmspeed', 'hsmspeed-method']) expect(ops).toContain(op);
    const rsa = records.filter((r) => r.operation === 'sign-concurrent' && r.algorithm === 'RSA-2048').map((r) => r.concurrency);
    expect(rsa).toEqual([1, 2, 4, 8]);
    // Every signing algorithm SoftHSM 2.6 offers through its own module.
    expect(records.filter((r) => r.operation === 'sign').map((r) => r.algorithm))
      .toEqual(['RSA-2048', 'RSA-3072', 'RSA-4096', 'ECDSA P-256', 'ECDSA P-384', 'Ed25519']);
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

  test('bench.md has the tables, the DNSSEC view and the documented table as a reference', () => {
    const md = files['bench.md']!;
    expect(md).toMatch(/Generated \d+ signatures in \d+s \(\d+ sig\/s\)/);
    expect(md).toContain('Side by side with ods-hsmspeed');
    expect(md).toContain('Reference only: this driver is not a smartcard-hsm');
    expect(md).toContain('RSA 3072 Key Gen');
  });

  test('the charts parse as SVG with axes and one softhsm series per panel', () => {
    const parser = new XMLParser({ ignoreAttributes: false });
    expect(XMLValidator.validate(files['bench-throughput.svg']!)).toBe(true);
    const tp = parser.parse(files['bench-throughput.svg']!);
    const panels = [tp.svg.g].flat().filter((g: Record<string, string>) => g['@_class'] === 'panel');
    expect(panels.length).toBe(6);
    for (const p of panels) {
      const groups = [p.g].flat();
      expect(groups.some((g: Record<string, string>) => g['@_class'] === 'axis x-axis')).toBe(true);
      expect(groups.some((g: Record<string, string>) => g['@_class'] === 'axis y-axis')).toBe(true);
      expect(groups.filter((g: Record<string, string>) => g['@_class'] === 'series').map((g: Record<string, string>) => g['@_data-driver'])).toEqual(['softhsm']);
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
