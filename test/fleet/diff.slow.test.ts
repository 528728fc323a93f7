/**
 * hsm-harness diff on a real run (in-process SoftHSM: discovery, sessions, suitability and the quick bench)
 * against itself and against copies with known changes: exactly the changes made are reported, in text,
 * Markdown and JSON, with exit 1 when one is a regression of the kind --fail-on selects (conformance by
 * default) and 0 when nothing changed. Throughput is judged by the noise model (test/fleet/noise.unit.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verdictLabel, type RunResults } from '../../src/results.js';
import type { BenchSection } from '../../bench/types.js';
import { smallestP } from '../../src/fleet/noise.js';
import { cli, skipWithReason } from '../core/helpers.js';

const tmp: string[] = [];
let runDir = '';
let original: RunResults;

async function variant(change: (r: RunResults) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hh-diff-copy-'));
  tmp.push(dir);
  const r = structuredClone(original);
  change(r);
  await writeFile(join(dir, 'results.json'), JSON.stringify(r, null, 2));
  return dir;
}

beforeAll(async () => {
  runDir = await mkdtemp(join(tmpdir(), 'hh-diff-run-'));
  tmp.push(runDir);
  const r = await cli(
    ['run', '--driver', 'softhsm', '--suite', 'discovery', '--suite', 'sessions', '--suite', 'suitability', '--suite', 'bench', '--out', runDir, '--quiet'],
    {},
    { timeoutMs: 900_000 },
  );
  if (!existsSync(join(runDir, 'results.json'))) throw new Error(`run wrote no results.json (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  original = JSON.parse(await readFile(join(runDir, 'results.json'), 'utf8'));
}, 900_000);

afterAll(async () => {
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});

describe('hsm-harness diff', () => {
  test('a run against itself: nothing changed, exit 0, in every format', async () => {
    const text = await cli(['diff', runDir, runDir]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^no changes$/m);
    const json = await cli(['diff', join(runDir, 'results.json'), runDir, '--format', 'json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ changes: [], regressions: 0 });
    const md = await cli(['diff', runDir, runDir, '--format', 'md']);
    expect(md.stdout).toContain('No changes.');
  });

  test('one changed golden code, one lost mechanism, one flipped verdict: exactly those three, exit 1', async () => {
    const d0 = original.drivers[0]!;
    const situation = Object.keys(d0.goldenCodes).find((k) => /buffer/.test(k))!;
    expect(d0.goldenCodes[situation]).toBe('CKR_BUFFER_TOO_SMALL'); // PKCS#11 v2.40 §5.2: a too-small buffer
    const lost = d0.mechanisms.find((m) => m.name === 'CKM_ECDSA')!;
    expect(lost).toBeTruthy();
    const verdict = d0.suitability[0]!;
    const flippedTo = verdictLabel(verdict) === 'suitable' ? 'not suitable' : 'suitable';
    const changed = await variant((r) => {
      const d = r.drivers[0]!;
      d.goldenCodes[situation] = 'CKR_GENERAL_ERROR';
      d.mechanisms = d.mechanisms.filter((m) => m.name !== 'CKM_ECDSA');
      const v = d.suitability[0]!;
      Object.assign(v, flippedTo === 'suitable' ? { suitable: true, reasons: [] } : { suitable: false, reasons: ['needs CKM_ECDSA'] });
    });

    const json = await cli(['diff', runDir, changed, '--format', 'json']);
    expect(json.code, json.stderr).toBe(1);
    type Change = { driver: string; kind: string; key: string; old: string; new: string; regression: boolean };
    const out = JSON.parse(json.stdout) as { changes: Change[]; regressions: number };
    const byKind = Object.fromEntries(out.changes.map((c) => [c.kind, c]));
    expect(out.changes.map((c) => c.kind).sort()).toEqual(['golden', 'mechanism', 'verdict']);
    expect(byKind.golden).toEqual({
      driver: 'softhsm',
      kind: 'golden',
      key: situation,
      old: 'CKR_BUFFER_TOO_SMALL',
      new: 'CKR_GENERAL_ERROR',
      regression: true,
    });
    expect(byKind.mechanism).toMatchObject({ key: 'CKM_ECDSA', old: 'offered', regression: true });
    expect(byKind.verdict).toMatchObject({ key: verdict.signer, old: verdictLabel(verdict), new: flippedTo, regression: flippedTo !== 'suitable' });
    expect(out.regressions).toBe(out.changes.filter((c) => c.regression).length);

    const text = await cli(['diff', runDir, changed]);
    expect(text.code).toBe(1);
    const lines = text.stdout.split('\n').filter((l) => /^ {2}(REGRESSION|changed)/.test(l));
    expect(lines).toHaveLength(3);
    expect(text.stdout).toContain(`${situation}: CKR_BUFFER_TOO_SMALL → CKR_GENERAL_ERROR`);
    const md = await cli(['diff', runDir, changed, '--format', 'md']);
    expect(md.code).toBe(1);
    expect(md.stdout.split('\n').filter((l) => /^\| (❌ regression|changed) \|/.test(l))).toHaveLength(3);

    // Undoing the changes (new → old) is no regression for the golden code's sake alone: it changed, so it is one.
    const back = await cli(['diff', changed, runDir, '--format', 'json']);
    expect(JSON.parse(back.stdout).changes).toHaveLength(3);
  });

  const signFigures = () => (original.drivers[0]!.sections.bench as BenchSection).sign;
  const withSign = async (i: number, change: (s: BenchSection['sign'][number]) => void) =>
    variant((x) => change((x.drivers[0]!.sections.bench as BenchSection).sign[i]!));

  test('throughput (latency): a drop beyond both margins of error is not enough evidence (one window per run), never a regression; a move inside them is within noise', async (ctx) => {
    // The figure measured most tightly; on a loaded machine some margins are too wide to move a figure beyond.
    const figures = signFigures();
    const i = figures.reduce((best, f, k) => (f.latency.rme < figures[best]!.latency.rme ? k : best), 0);
    const sign = figures[i]!;
    const r = sign.latency.rme / 100;
    if (r >= 0.8) {
      await skipWithReason(ctx, `every signing latency in this run has a margin of error of ±80 % or more (best ±${sign.latency.rme.toFixed(0)} %)`);
    }
    // old − new > r·(old + new) needs new < old·(1 − r)/(1 + r); half of that is clearly beyond. The rate is 1000 / mean latency.
    const slower = await withSign(i, (s) => {
      s.latency.mean /= (1 - r) / (1 + r) / 2;
    });
    const out = await cli(['diff', runDir, slower, '--format', 'json', '--fail-on', 'performance']);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout).changes).toEqual([
      expect.objectContaining({
        kind: 'throughput',
        driver: 'softhsm',
        key: `sign-latency ${sign.algorithm} c=1`,
        regression: false,
        performance: expect.objectContaining({ verdict: 'not enough evidence', test: expect.stringMatching(/one window/) }),
      }),
    ]);
    // Not a conformance regression: the default gate passes.
    expect((await cli(['diff', runDir, slower])).code).toBe(0);
    // Within: a move of a quarter of the margin.
    const within = await withSign(i, (s) => {
      s.latency.mean /= 1 - r / 4;
    });
    const same = await cli(['diff', runDir, within, '--format', 'json', '--fail-on', 'all']);
    expect(same.code).toBe(0);
    expect(JSON.parse(same.stdout).changes).toEqual([
      expect.objectContaining({ kind: 'throughput', regression: false, performance: expect.objectContaining({ verdict: 'within noise' }) }),
    ]);
  });

  test('throughput (batches): every new batch far below every old one is slower beyond noise (given enough batches); faster is never a regression', async () => {
    const sign = signFigures()[0]!;
    const t = sign.threads[0]!;
    expect(t.rates.length).toBeGreaterThanOrEqual(2);
    // With few batches the exact rank test cannot reach α 0.05 (3 + 3: p ≥ 0.1): then the model says so instead.
    const enough = smallestP(t.rates.length, t.rates.length) < 0.05;
    const factor = Math.min(...t.rates) / Math.max(...t.rates) / 2;
    const scale = (f: number) =>
      withSign(0, (s) => {
        const x = s.threads[0]!;
        x.rates = x.rates.map((v) => v * f);
        Object.assign(x, { median: x.median * f, best: x.best * f, worst: x.worst * f });
      });
    const key = `sign-threads ${sign.algorithm} c=${t.threads}`;
    const fewer = await cli(['diff', runDir, await scale(factor), '--format', 'json', '--fail-on', 'performance']);
    expect(fewer.code).toBe(enough ? 1 : 0);
    expect(JSON.parse(fewer.stdout).changes).toEqual([
      expect.objectContaining({
        kind: 'throughput',
        key,
        regression: enough,
        performance: expect.objectContaining({ verdict: enough ? 'slower beyond noise' : 'not enough evidence' }),
      }),
    ]);
    const more = await cli(['diff', runDir, await scale(1 / factor), '--format', 'json', '--fail-on', 'all']);
    expect(more.code).toBe(0);
    expect(JSON.parse(more.stdout).changes).toEqual([
      expect.objectContaining({
        kind: 'throughput',
        regression: false,
        performance: expect.objectContaining({ verdict: enough ? 'faster beyond noise' : 'not enough evidence' }),
      }),
    ]);
    // Two batches that overlap the old ones, however the medians differ: never a regression.
    const overlap = await withSign(0, (s) => {
      s.threads[0]!.rates = [Math.min(...t.rates), Math.max(...t.rates) * 0.99];
      s.threads[0]!.median = Math.min(...t.rates);
    });
    const o = await cli(['diff', runDir, overlap, '--format', 'json', '--fail-on', 'all']);
    expect(o.code).toBe(0);
    expect(JSON.parse(o.stdout).changes.filter((c: { regression: boolean }) => c.regression)).toEqual([]);
  });

  test('bad --fail-on or --perf-threshold: exit 2 with one line', async () => {
    for (const args of [
      ['--fail-on', 'speed'],
      ['--perf-threshold', 'ten'],
      ['--perf-threshold', '-5'],
      ['--perf-threshold', '100'],
    ]) {
      const r = await cli(['diff', runDir, runDir, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });

  test('a case that passed and now fails is a regression; a driver that no longer ran is one too', async () => {
    const c0 = original.drivers[0]!.cases.find((c) => c.status === 'pass')!;
    const failed = await variant((r) => {
      const c = r.drivers[0]!.cases.find((x) => x.suite === c0.suite && x.case === c0.case)!;
      c.status = 'fail';
      c.reason = 'injected';
    });
    const out = JSON.parse((await cli(['diff', runDir, failed, '--format', 'json'])).stdout);
    expect(out.changes).toEqual([{ driver: 'softhsm', kind: 'case', key: `${c0.suite}/${c0.case}`, old: 'pass', new: 'fail', regression: true }]);
    const gone = await variant((r) => {
      Object.assign(r.drivers[0]!, { available: false, status: 'unavailable', availabilityReason: 'unplugged' });
      delete r.drivers[0]!.identity;
    });
    const g = await cli(['diff', runDir, gone, '--format', 'json']);
    expect(g.code).toBe(1);
    expect(JSON.parse(g.stdout).changes).toEqual([{ driver: 'softhsm', kind: 'driver', key: 'status', old: 'ran', new: 'unavailable', regression: true }]);
  });

  test('bad input: exit 2 with one line', async () => {
    const bad = [
      ['diff', runDir],
      ['diff', runDir, runDir, '--format', 'html'],
      ['diff', runDir, join(runDir, 'nope.json')],
      ['diff', runDir, join(runDir, 'junit.xml')],
    ];
    for (const args of bad) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });
});
