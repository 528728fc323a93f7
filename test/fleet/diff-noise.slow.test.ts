/**
 * The performance gate on real measurements (issue 24). The quick bench (`run --suite bench`, its 12 s
 * budget) runs on one SoftHSM token five times back to back through the generic pkcs11 driver, then twice
 * through a shim that halves the signing rate (fixtures/pkcs11/slow-sign-shim.c: every C_SignInit and
 * C_Sign costs twice the CPU). Every pair is diffed, older run first:
 * - two runs of the same stack: no performance regression with the default settings;
 * - plain → halved: a performance regression, and every signing figure of one session slower beyond noise;
 *   exit 1 only with --fail-on performance or all (the default gate is conformance);
 * - halved → plain, the other way: faster beyond noise, never a regression.
 * Seven quick passes take a few minutes on a shared machine: a slow test.
 *
 * The claims hold on an otherwise idle machine only, as docs/benchmarks.md says of every comparison. SoftHSM
 * signs on the CPU: with many more runnable threads than cores, each run's share of the CPU, and so every
 * figure of that run, moves by tens of percent from one run to the next (seen at a load average of 16-20
 * on 2 CPUs: the same stack −40 %, the halved one only −38 %); no threshold can tell that from the token.
 * So the test measures the load first and skips, with the figures in the reason, when the machine is busy.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SoftHsmStore } from '../../src/softhsm.js';
import type { RunDiff } from '../../src/fleet/diff.js';
import { cli, shimOverSoftHsm, skipWithReason, SOFTHSM_MODULE } from '../core/helpers.js';

const PLAIN = 5,
  HALVED = 2;
let dir: string;
let store: SoftHsmStore;
/** Report directories, oldest first, and whether each run went through the shim. */
const runs: { out: string; halved: boolean }[] = [];
/** Set when the machine was too busy for the claims to be tested (say why). */
let busy = '';
const CPUS = availableParallelism();
/** The bench's own signer threads (up to 4 in a quick pass) raise the load during the runs by as much. */
const OWN_THREADS = 4;
const load = () => loadavg()[0]!;

/**
 * Another harness run or benchmark on this machine (a test file in the other vitest worker, say): the load
 * average lags it by a minute, and two benchmarks side by side moved the same stack by up to 47 % here. The
 * processes whose command line runs the harness's CLI and that this test did not start.
 */
function otherHarnessRuns(): number {
  const mine = new Set<number>([process.pid]);
  const procs = readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .flatMap((e) => {
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return [{ pid: Number(e), ppid, cmd: readFileSync(`/proc/${e}/cmdline`, 'latin1') }];
      } catch {
        return [];
      }
    })
    .sort((a, b) => a.pid - b.pid);
  // Descendants of this process (pids are not ordered by ancestry, so repeat until nothing is added).
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) {
      if (mine.has(p.pid) || !mine.has(p.ppid)) continue;
      mine.add(p.pid);
      grew = true;
    }
  }
  return procs.filter((p) => !mine.has(p.pid) && /dist\/src\/(cli|runner\/worker)\.js/.test(p.cmd)).length;
}
const notAlone = (when: string) => {
  const n = otherHarnessRuns();
  return n ? `${n} other harness process(es) running ${when} (another test file's runs or benchmarks): the claims need the machine to itself` : '';
};

beforeAll(async () => {
  busy = notAlone('before the runs');
  if (busy) return;
  if (load() > CPUS) {
    busy = `machine busy before the runs: 1-minute load average ${load().toFixed(1)} on ${CPUS} CPUs (the claims need an otherwise idle machine)`;
    return;
  }
  dir = await mkdtemp(join(tmpdir(), 'hh-diff-noise-'));
  let env: NodeJS.ProcessEnv;
  ({ store, env } = await shimOverSoftHsm('pkcs11/slow-sign-shim.c', dir, 'hh-noise'));
  for (let i = 0; i < PLAIN + HALVED; i++) {
    const halved = i >= PLAIN;
    const out = join(dir, `run-${i}`);
    const r = await cli(
      ['run', '--driver', 'pkcs11', '--suite', 'bench', '--out', out, '--quiet'],
      halved ? env : { ...env, HSM_PKCS11_MODULE: SOFTHSM_MODULE },
      {
        timeoutMs: 240_000,
      },
    );
    if (!existsSync(join(out, 'results.json'))) throw new Error(`run ${i} wrote no results.json (exit ${r.code}): ${r.stderr.slice(-2000)}`);
    runs.push({ out, halved });
    busy = notAlone(`during run ${i}`);
    if (busy) return;
    if (load() > CPUS + OWN_THREADS) {
      busy = `machine busy during run ${i}: 1-minute load average ${load().toFixed(1)} on ${CPUS} CPUs, more than the bench's own ${OWN_THREADS} threads add`;
      return;
    }
  }
}, 1_800_000);

afterAll(async () => {
  await store?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function diff(a: number, b: number, failOn = 'performance'): Promise<{ code: number; d: RunDiff }> {
  const r = await cli(['diff', runs[a]!.out, runs[b]!.out, '--format', 'json', '--fail-on', failOn]);
  expect(r.stderr).toBe('');
  return { code: r.code, d: JSON.parse(r.stdout) as RunDiff };
}

const pairs = (keep: (a: boolean, b: boolean) => boolean) =>
  runs.flatMap((x, i) => runs.flatMap((y, j) => (i < j && keep(x.halved, y.halved) ? [[i, j] as const] : [])));
const beyond = (d: RunDiff) => d.changes.filter((c) => c.performance?.verdict.endsWith('beyond noise')).map((c) => `${c.key}: ${c.old} → ${c.new}`);

describe('diff on repeated quick benches of one SoftHSM token', () => {
  test('two runs of the same stack: no performance regression with the default threshold, in every pair', async (ctx) => {
    if (busy) await skipWithReason(ctx, busy);
    const same = pairs((a, b) => a === b);
    expect(same).toHaveLength((PLAIN * (PLAIN - 1)) / 2 + (HALVED * (HALVED - 1)) / 2);
    for (const [i, j] of same) {
      const { code, d } = await diff(i, j, 'all');
      const slower = d.changes.filter((c) => c.regression).map((c) => `${c.kind} ${c.key}: ${c.old} → ${c.new}`);
      expect(slower, `runs ${i} → ${j}`).toEqual([]);
      expect(code, `runs ${i} → ${j}`).toBe(0);
      // The figures were compared, not skipped: every one the runs share appears with a verdict.
      expect(d.changes.filter((c) => c.kind === 'throughput').length, `runs ${i} → ${j}`).toBeGreaterThan(0);
    }
  });

  test('plain → halved: a performance regression in every pair that crosses the shim, every one-session signing figure slower beyond noise', async (ctx) => {
    if (busy) await skipWithReason(ctx, busy);
    const crossing = pairs((a, b) => !a && b);
    expect(crossing).toHaveLength(PLAIN * HALVED);
    for (const [i, j] of crossing) {
      const { code, d } = await diff(i, j);
      expect(code, `runs ${i} → ${j}: ${beyond(d).join('; ')}`).toBe(1);
      const oneSession = d.changes.filter((c) => /^sign-(threads|bare-loop) .* c=1$/.test(c.key));
      expect(oneSession.length, `runs ${i} → ${j}`).toBeGreaterThanOrEqual(4); // RSA-2048 and ECDSA P-256, each harness and bare loop
      for (const c of oneSession) expect(c.performance?.verdict, `runs ${i} → ${j} ${c.key}: ${c.old} → ${c.new}`).toBe('slower beyond noise');
      expect(d.performanceRegressions).toBeGreaterThanOrEqual(oneSession.length);
      // The default gate is conformance: the same token and the same checks, so exit 0.
      const byDefault = await cli(['diff', runs[i]!.out, runs[j]!.out]);
      expect(byDefault.code, byDefault.stdout).toBe(0);
      expect(byDefault.stdout).toMatch(/^ {2}slower beyond noise +throughput sign-threads RSA-2048 c=1: .* \(threshold 10 %\); Mann-Whitney U = /m);
    }
  });

  test('halved → plain: faster beyond noise, never a regression', async (ctx) => {
    if (busy) await skipWithReason(ctx, busy);
    for (const [i, j] of pairs((a, b) => !a && b)) {
      const r = await cli(['diff', runs[j]!.out, runs[i]!.out, '--format', 'json', '--fail-on', 'performance']);
      const d = JSON.parse(r.stdout) as RunDiff;
      expect(r.code, `runs ${j} → ${i}`).toBe(0);
      const oneSession = d.changes.filter((c) => /^sign-threads .* c=1$/.test(c.key));
      for (const c of oneSession) expect(c.performance?.verdict, `runs ${j} → ${i} ${c.key}`).toBe('faster beyond noise');
    }
  });
});
