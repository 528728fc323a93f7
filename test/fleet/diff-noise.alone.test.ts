/**
 * The performance gate on real measurements (issue 24). The quick bench (`run --suite bench`, its 12 s
 * budget) runs on one SoftHSM token five times back to back through the generic pkcs11 driver, then twice
 * through a shim that halves the signing rate (fixtures/pkcs11/slow-sign-shim.c: every C_SignInit and
 * C_Sign costs twice the CPU). Every pair is diffed, older run first:
 * - two runs of the same stack: no performance regression with the default settings;
 * - plain → halved: a performance regression; every signing figure of one session slower beyond noise or, where
 *   the machine's own speed moved too much between the two runs to tell, not enough evidence saying so (never
 *   within noise); exit 1 only with --fail-on performance or all (the default gate is conformance);
 * - halved → plain, the other way: faster beyond noise (or not enough evidence, as above), never a regression.
 * Seven quick passes take a few minutes: the `alone` tier (vitest.config.ts), which runs last, one file at a
 * time, after every other tier (CI's last test step, `npm run test:alone`).
 *
 * The claims hold on an otherwise idle machine only, as docs/benchmarks.md says of every comparison. SoftHSM
 * signs on the CPU: with many more runnable threads than cores, each run's share of the CPU, and so every
 * figure of that run, moves by tens of percent from one run to the next (seen at a load average of 16-20
 * on 2 CPUs: the same stack −40 %, the halved one only −38 %); no threshold can tell that from the token.
 * So the test measures what other processes take of the CPU, before the runs and during each run, and skips,
 * with the figures in the reason, when the machine is clearly busy. It measures the CPU time itself
 * (/proc/stat less this process and its children) rather than the load average, which lags by a minute: right
 * after CI's slow tier the load average is still high on a machine that has become idle.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { machineSigner } from '../../bench/pkcs11.js';
import type { SoftHsmStore } from '../../src/softhsm.js';
import type { RunDiff } from '../../src/fleet/diff.js';
import type { BenchRecord } from '../../src/bench-format.js';
import { cli, shimOverSoftHsm, skipWithReason, SOFTHSM_MODULE } from '../core/helpers.js';

const PLAIN = 5,
  HALVED = 2;
let dir: string;
let store: SoftHsmStore;
/** Report directories, oldest first, whether each run went through the shim, and the CPU share others took during it. */
const runs: { out: string; halved: boolean; others: number }[] = [];
/** Set when the machine was too busy for the claims to be tested (say why). */
let busy = '';
const CPUS = availableParallelism();
/**
 * Clearly busy: other processes took more than this share of the machine's CPU time (a fifth of a core on 2
 * CPUs). Measured here with other processes taking about one of the 2 CPUs and this bench in a top-priority
 * autogroup (so it never waited for a CPU): the same stack's one-session RSA figure still moved by up to 30 %
 * between runs, and OpenSSL's own RSA-2048 signing rate (`openssl speed`, 2 s windows) by 17 %. Work on the
 * other CPU slows this one (shared cache and memory, the host's scheduling), beyond what a 10 % threshold can
 * absorb; a tenth of the machine keeps that well under it.
 */
const BUSY_SHARE = 0.1;

/** Clock ticks of a process from /proc/PID/stat: fields 14-17 (utime, stime, cutime, cstime), after the command's closing parenthesis. */
function processTicks(pid: number | 'self', fields: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .slice(11, 11 + fields)
    .map(Number)
    .reduce((a, b) => a + b, 0);
}
/**
 * CPU time in clock ticks: the whole machine's busy time (steal included: the host ran someone else), and
 * ours: this worker with its reaped children (the runs), and vitest's main process that started it.
 */
function cpuTicks(): { total: number; busy: number; mine: number } {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const busyTicks = user! + nice! + system! + irq! + softirq! + (steal ?? 0);
  return { total: busyTicks + idle! + iowait!, busy: busyTicks, mine: processTicks('self', 4) + processTicks(process.ppid, 2) };
}
/** The share of the machine's CPU time that other processes took since `from`, in [0, 1]. */
function othersShare(from: ReturnType<typeof cpuTicks>): number {
  const now = cpuTicks();
  const total = now.total - from.total;
  return total > 0 ? Math.max(0, now.busy - from.busy - (now.mine - from.mine)) / total : 0;
}
const pct = (share: number) => `${(share * 100).toFixed(0)} %`;

/**
 * The machine's own speed, independent of the harness and of SoftHSM: RSA-2048 signatures per second by
 * node:crypto (OpenSSL) on this thread, for 1 s. On a shared virtual machine this moved by up to 25 % over
 * minutes (`openssl speed rsa2048` in 2 s windows: 1110-1350/s at 17:41 beside other processes but at top
 * priority, 990-1070/s at 18:06 on an otherwise idle machine; this very loop with one key, idle machine, ten
 * 1 s windows: 864-1098/s), with /proc/stat showing nothing: the host's other guests, and the clock the host
 * gives its cores, are invisible from inside. That is why the bench measures the machine beside the token in
 * every round and `diff` judges a move relative to it too (src/fleet/noise.ts). Here it is only recorded, before
 * every run and after the last, for whoever reads the JUnit file.
 */
const REFERENCE = machineSigner('rsa-2048', 'sha256');
const referenceRate = () => REFERENCE.batch(1000);
const reference: number[] = [];
const tooBusy = (share: number, when: string) =>
  share > BUSY_SHARE
    ? `machine busy ${when}: other processes took ${pct(share)} of the CPU time of ${CPUS} CPUs (more than ${pct(BUSY_SHARE)}; the claims need an otherwise idle machine)`
    : '';

beforeAll(async () => {
  const before = cpuTicks();
  await sleep(5_000);
  busy = tooBusy(othersShare(before), 'before the runs (5 s measured)');
  if (busy) return;
  dir = await mkdtemp(join(tmpdir(), 'hh-diff-noise-'));
  let env: NodeJS.ProcessEnv;
  ({ store, env } = await shimOverSoftHsm('pkcs11/slow-sign-shim.c', dir, 'hh-noise'));
  for (let i = 0; i < PLAIN + HALVED; i++) {
    const halved = i >= PLAIN;
    const out = join(dir, `run-${i}`);
    reference.push(referenceRate());
    const start = cpuTicks();
    const r = await cli(
      ['run', '--driver', 'pkcs11', '--suite', 'bench', '--out', out, '--quiet'],
      halved ? env : { ...env, HSM_PKCS11_MODULE: SOFTHSM_MODULE },
      {
        timeoutMs: 240_000,
      },
    );
    if (!existsSync(join(out, 'results.json'))) throw new Error(`run ${i} wrote no results.json (exit ${r.code}): ${r.stderr.slice(-2000)}`);
    const others = othersShare(start);
    runs.push({ out, halved, others });
    busy = tooBusy(others, `during run ${i}`);
    if (busy) return;
  }
  reference.push(referenceRate());
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
    // In the JUnit file: how idle the machine was, for whoever reads a pass or a failure.
    await ctx.annotate(
      `other processes took ${runs.map((r) => pct(r.others)).join(', ')} of the CPU during runs 0-${runs.length - 1}; ` +
        `node:crypto RSA-2048 before each run and after the last: ${reference.map((r) => r.toFixed(0)).join(', ')} signatures/s`,
      'machine',
    );
    // Every run measured the machine beside the token, round by round: diff could judge each figure relative to it.
    for (const r of runs) {
      const records = (JSON.parse(readFileSync(join(r.out, 'bench.json'), 'utf8')) as { records: BenchRecord[] }).records;
      const oneSession = records.filter((x) => x.operation === 'sign-threads' && x.concurrency === 1);
      expect(oneSession.length, r.out).toBeGreaterThanOrEqual(2);
      for (const x of oneSession) expect(x.machineRates?.length, `${r.out} ${x.algorithm}`).toBe(x.rates?.length);
    }
    const same = pairs((a, b) => a === b);
    expect(same).toHaveLength((PLAIN * (PLAIN - 1)) / 2 + (HALVED * (HALVED - 1)) / 2);
    for (const [i, j] of same) {
      const { code, d } = await diff(i, j, 'all');
      const slower = d.changes.filter((c) => c.regression).map((c) => `${c.kind} ${c.key}: ${c.old} → ${c.new} (${c.performance?.test})`);
      const during = `runs ${i} → ${j} (other processes took ${pct(runs[i]!.others)} and ${pct(runs[j]!.others)} of the CPU)`;
      expect(slower, during).toEqual([]);
      expect(code, `runs ${i} → ${j}`).toBe(0);
      // The figures were compared, not skipped: every one the runs share appears with a verdict.
      expect(d.changes.filter((c) => c.kind === 'throughput').length, `runs ${i} → ${j}`).toBeGreaterThan(0);
    }
  });

  test('plain → halved: a performance regression in every pair that crosses the shim; no one-session signing figure within noise', async (ctx) => {
    if (busy) await skipWithReason(ctx, busy);
    const crossing = pairs((a, b) => !a && b);
    expect(crossing).toHaveLength(PLAIN * HALVED);
    for (const [i, j] of crossing) {
      const { code, d } = await diff(i, j);
      expect(code, `runs ${i} → ${j}: ${beyond(d).join('; ')}`).toBe(1);
      const oneSession = d.changes.filter((c) => /^sign-(threads|bare-loop) .* c=1$/.test(c.key));
      expect(oneSession.length, `runs ${i} → ${j}`).toBeGreaterThanOrEqual(4); // RSA-2048 and ECDSA P-256, each harness and bare loop
      // Each halved figure is slower beyond noise, or, where the machine's own speed moved too much between the two
      // runs to tell (ECDSA's 0.1 ms operations follow it least closely), not enough evidence, saying so: never
      // within noise, never faster.
      for (const c of oneSession) {
        const what = `runs ${i} → ${j} ${c.key}: ${c.old} → ${c.new} (${c.performance?.test})`;
        expect(['slower beyond noise', 'not enough evidence'], what).toContain(c.performance?.verdict);
        if (c.performance?.verdict === 'not enough evidence') expect(c.performance.test, what).toMatch(/the machine may have changed/);
      }
      const slower = oneSession.filter((c) => c.performance?.verdict === 'slower beyond noise');
      expect(slower.length, `runs ${i} → ${j}`).toBeGreaterThan(0);
      expect(d.performanceRegressions).toBeGreaterThanOrEqual(slower.length);
      // The default gate is conformance: the same token and the same checks, so exit 0.
      const byDefault = await cli(['diff', runs[i]!.out, runs[j]!.out]);
      expect(byDefault.code, byDefault.stdout).toBe(0);
      expect(byDefault.stdout).toMatch(/^ {2}slower beyond noise +throughput sign-(threads|bare-loop) .+ c=1: .* \(threshold 10 %\); Mann-Whitney U = /m);
    }
  });

  test('halved → plain: faster beyond noise, never a regression', async (ctx) => {
    if (busy) await skipWithReason(ctx, busy);
    for (const [i, j] of pairs((a, b) => !a && b)) {
      const r = await cli(['diff', runs[j]!.out, runs[i]!.out, '--format', 'json', '--fail-on', 'performance']);
      const d = JSON.parse(r.stdout) as RunDiff;
      expect(r.code, `runs ${j} → ${i}: ${beyond(d).join('; ')}`).toBe(0);
      const oneSession = d.changes.filter((c) => /^sign-threads .* c=1$/.test(c.key));
      expect(oneSession.length, `runs ${j} → ${i}`).toBeGreaterThanOrEqual(2);
      for (const c of oneSession) {
        const what = `runs ${j} → ${i} ${c.key}: ${c.old} → ${c.new} (${c.performance?.test})`;
        expect(['faster beyond noise', 'not enough evidence'], what).toContain(c.performance?.verdict);
        if (c.performance?.verdict === 'not enough evidence') expect(c.performance.test, what).toMatch(/the machine may have changed/);
      }
    }
  });
});
