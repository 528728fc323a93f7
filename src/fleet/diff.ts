/**
 * What changed between two runs of the same tokens (after a firmware, module or OpenSC upgrade): cases whose
 * status changed, golden return codes that changed, capabilities and mechanisms gained or lost, signer
 * verdicts that flipped (conformance), and throughput judged by the noise model of ./noise.ts (performance).
 * Drivers are matched by id. Each change says whether it is a regression; `hsm-harness diff` exits 1 when one
 * of the kind --fail-on selects is.
 */
import { verdictLabel, type CaseStatus, type DriverReport } from '../results.js';
import type { BenchRecord } from '../bench-format.js';
import type { LoadedRun } from './load.js';
import { moduleLabel } from './matrix.js';
import { markdownTable, mdCell } from '../reports/markdown.js';
import { ALPHA, DEFAULT_PERF_THRESHOLD_PERCENT, describeJudgement, describeModel, judge, perfFigure, type PerfJudgement } from './noise.js';

export type ChangeKind = 'driver' | 'identity' | 'case' | 'golden' | 'capability' | 'mechanism' | 'verdict' | 'throughput';

export interface Change {
  driver: string;
  kind: ChangeKind;
  /** What changed: a case (suite/case), a golden situation, a capability, a mechanism, a signer, a benchmark series. */
  key: string;
  old: string;
  new: string;
  regression: boolean;
  /** Throughput only: the noise model's judgement (a regression is "slower beyond noise"). */
  performance?: PerfJudgement;
}

export const FAIL_ON = ['conformance', 'performance', 'all'] as const;
export type FailOn = (typeof FAIL_ON)[number];

export interface DiffOptions {
  /** Minimum relative move of a performance figure, in percent. */
  perfThresholdPercent?: number;
  /** Which regressions make the exit code 1. */
  failOn?: FailOn;
}

export interface RunDiff {
  schemaVersion: 1;
  old: { file: string; finishedAt: string };
  new: { file: string; finishedAt: string };
  changes: Change[];
  /** The regressions --fail-on counts: the exit code is 1 when this is not 0. */
  regressions: number;
  conformanceRegressions: number;
  performanceRegressions: number;
  failOn: FailOn;
  noiseModel: { thresholdPercent: number; alpha: number; description: string };
  /** Runs whose benchmark started on a busy machine, said when performance changes are listed. */
  warnings: string[];
}

export const isPerformance = (c: Change) => c.kind === 'throughput';

const ABSENT = 'absent';
const BAD = new Set<string>(['fail', 'crash', 'timeout']);

/** Worse means: it passed and no longer does, or it now fails, crashes or times out where it did not. */
export function caseRegressed(old: CaseStatus | typeof ABSENT, now: CaseStatus | typeof ABSENT): boolean {
  if (now === ABSENT) return false; // not run this time (another suite selection): listed, but proves nothing worse
  return (old === 'pass' && now !== 'pass') || (BAD.has(now) && !BAD.has(old));
}

const VERDICT_RANK = { suitable: 2, 'not tested': 1, 'not suitable': 0 } as const;

export function diffRuns(oldRun: LoadedRun, newRun: LoadedRun, options: DiffOptions = {}): RunDiff {
  const threshold = options.perfThresholdPercent ?? DEFAULT_PERF_THRESHOLD_PERCENT;
  const failOn = options.failOn ?? 'conformance';
  const changes: Change[] = [];
  const add = (driver: string, kind: ChangeKind, key: string, old: string, now: string, regression: boolean) =>
    changes.push({ driver, kind, key, old, new: now, regression });
  const oldDrivers = new Map(oldRun.results.drivers.map((d) => [d.id, d]));
  const newDrivers = new Map(newRun.results.drivers.map((d) => [d.id, d]));
  for (const id of union(oldDrivers.keys(), newDrivers.keys())) {
    const o = oldDrivers.get(id),
      n = newDrivers.get(id);
    const os = o ? driverState(o) : ABSENT,
      ns = n ? driverState(n) : ABSENT;
    // A driver left out of the new run was not asked for; one that ran and now could not is worse.
    if (os !== ns) add(id, 'driver', 'status', os, ns, os === 'ran' && ns !== 'ran' && ns !== ABSENT);
    if (!o?.available || !n?.available) continue;
    diffIdentity(o, n, add);
    diffDriver(o, n, add);
  }
  diffBench(oldRun.bench, newRun.bench, threshold, changes);
  const conformanceRegressions = changes.filter((c) => c.regression && !isPerformance(c)).length;
  const performanceRegressions = changes.filter((c) => c.regression && isPerformance(c)).length;
  const warnings = changes.some(isPerformance) ? [busyMachine(oldRun, 'old'), busyMachine(newRun, 'new')].filter((w) => w !== undefined) : [];
  return {
    schemaVersion: 1,
    old: { file: oldRun.file, finishedAt: oldRun.results.finishedAt },
    new: { file: newRun.file, finishedAt: newRun.results.finishedAt },
    changes,
    regressions: (failOn !== 'performance' ? conformanceRegressions : 0) + (failOn !== 'conformance' ? performanceRegressions : 0),
    conformanceRegressions,
    performanceRegressions,
    failOn,
    noiseModel: { thresholdPercent: threshold, alpha: ALPHA, description: describeModel(threshold) },
    warnings,
  };
}

/**
 * A run whose benchmark started with more runnable threads than CPUs (the bench section records both): its
 * figures measure the machine's load as much as the token, and no noise model can separate the two.
 */
function busyMachine(run: LoadedRun, which: 'old' | 'new'): string | undefined {
  for (const d of run.results.drivers) {
    const env = (d.sections.bench as { environment?: { loadAverage?: unknown; cpus?: unknown } } | undefined)?.environment;
    const load = Number(String(env?.loadAverage ?? '').split(' ')[0]),
      cpus = Number(env?.cpus);
    if (load > cpus) {
      return (
        `the ${which} run's benchmark started at a 1-minute load average of ${load} on ${cpus} CPUs: its figures measure the busy machine ` +
        'as much as the token (docs/benchmarks.md, "Limit: a busy machine")'
      );
    }
  }
  return undefined;
}

type Add = (driver: string, kind: ChangeKind, key: string, old: string, now: string, regression: boolean) => void;

function union<T>(a: Iterable<T>, b: Iterable<T>): T[] {
  return [...new Set([...a, ...b])];
}

function driverState(d: DriverReport): string {
  return d.available ? d.status : 'unavailable';
}

/** The firmware or module moved: context for everything else, not a regression by itself. */
function diffIdentity(o: DriverReport, n: DriverReport, add: Add): void {
  const oi = o.identity,
    ni = n.identity;
  if (!oi || !ni) return;
  const fields: [string, string, string][] = [
    ['product', oi.product, ni.product],
    ['firmware', oi.firmware ?? '', ni.firmware ?? ''],
    ['module', moduleLabel(oi), moduleLabel(ni)],
  ];
  for (const [key, a, b] of fields) if (a !== b) add(o.id, 'identity', key, a || '–', b || '–', false);
}

function diffDriver(o: DriverReport, n: DriverReport, add: Add): void {
  const id = o.id;
  const caseKey = (c: { suite: string; case: string }) => `${c.suite}/${c.case}`;
  const oc = new Map(o.cases.map((c) => [caseKey(c), c.status]));
  const nc = new Map(n.cases.map((c) => [caseKey(c), c.status]));
  for (const k of union(oc.keys(), nc.keys())) {
    const a = oc.get(k) ?? ABSENT,
      b = nc.get(k) ?? ABSENT;
    if (a !== b) add(id, 'case', k, a, b, caseRegressed(a, b));
  }
  for (const k of union(Object.keys(o.goldenCodes), Object.keys(n.goldenCodes))) {
    const a = o.goldenCodes[k],
      b = n.goldenCodes[k];
    // A code that changed breaks whoever relied on it; one only seen now (or no longer exercised) is listed.
    if (a !== b) add(id, 'golden', k, a ?? ABSENT, b ?? ABSENT, a !== undefined && b !== undefined);
  }
  // A capability or mechanism a transport hides (p11-kit's RPC) is shown as such: moving between "missing" and
  // "hidden by the transport" says nothing about the token, so it is never a regression.
  for (const k of union(Object.keys(o.capabilities), Object.keys(n.capabilities))) {
    const a = o.capabilities[k],
      b = n.capabilities[k];
    const show = (d: DriverReport, v: boolean | undefined) =>
      v === undefined ? 'not recorded' : v ? 'works' : d.transport?.hiddenCapabilities[k] ? `hidden by ${d.transport.name}` : 'does not work';
    if (show(o, a) !== show(n, b)) add(id, 'capability', k, show(o, a), show(n, b), a === true);
  }
  const om = new Map(o.mechanisms.map((m) => [m.name, m])),
    nm = new Map(n.mechanisms.map((m) => [m.name, m]));
  const state = (d: DriverReport, offered: Map<string, unknown>, k: string) =>
    offered.has(k) ? 'offered' : d.transport?.hiddenMechanisms.includes(k) ? `hidden by ${d.transport.name}` : ABSENT;
  const hidden = (d: DriverReport) => d.transport?.hiddenMechanisms ?? [];
  for (const k of union([...om.keys(), ...hidden(o)], [...nm.keys(), ...hidden(n)])) {
    const a = om.get(k),
      b = nm.get(k);
    if (!a || !b) {
      const sa = state(o, om, k),
        sb = state(n, nm, k);
      if (sa !== sb) add(id, 'mechanism', k, sa, sb, sa === 'offered');
      continue;
    }
    const af = [...a.flags].sort().join(' '),
      bf = [...b.flags].sort().join(' ');
    if (af !== bf)
      add(
        id,
        'mechanism',
        `${k} flags`,
        af,
        bf,
        a.flags.some((f) => !b.flags.includes(f)),
      );
  }
  const ov = new Map(o.suitability.map((v) => [v.signer, verdictLabel(v)])),
    nv = new Map(n.suitability.map((v) => [v.signer, verdictLabel(v)]));
  for (const k of union(ov.keys(), nv.keys())) {
    const a = ov.get(k),
      b = nv.get(k);
    if (a === b) continue;
    add(id, 'verdict', k, a ?? ABSENT, b ?? ABSENT, a !== undefined && (b === undefined || VERDICT_RANK[b] < VERDICT_RANK[a]));
  }
}

/** Every figure both runs measured and that moved at all, judged by the noise model (./noise.ts). */
function diffBench(oldRecs: BenchRecord[], newRecs: BenchRecord[], threshold: number, changes: Change[]): void {
  const key = (r: BenchRecord) => `${r.operation} ${r.algorithm} c=${r.concurrency}`;
  const newer = new Map(newRecs.map((r) => [`${r.driver}\0${key(r)}`, r]));
  for (const a of oldRecs) {
    const b = newer.get(`${a.driver}\0${key(a)}`);
    if (!b || b.opsPerSec === a.opsPerSec) continue;
    const performance = judge(perfFigure(a), perfFigure(b), threshold);
    changes.push({
      driver: a.driver,
      kind: 'throughput',
      key: key(a),
      old: showRate(a),
      new: showRate(b),
      regression: performance.verdict === 'slower beyond noise',
      performance,
    });
  }
}

function showRate(r: BenchRecord): string {
  const rates = r.rates;
  if (rates?.length) {
    const n = `${rates.length} batch${rates.length === 1 ? '' : 'es'}`;
    return `${r.opsPerSec.toFixed(1)} ops/s (${n} ${Math.min(...rates).toFixed(1)}–${Math.max(...rates).toFixed(1)})`;
  }
  const n = r.latencyMs?.samples;
  if (n !== undefined) return `${r.opsPerSec.toFixed(1)} ops/s (${n} sample${n === 1 ? '' : 's'}, ±${r.latencyMs!.rme.toFixed(1)}%)`;
  return `${r.opsPerSec.toFixed(1)} ops/s`;
}

/** The label a change is shown with: its noise verdict for throughput, regression or changed for the rest. */
function label(c: Change): string {
  return c.performance ? c.performance.verdict : c.regression ? 'REGRESSION' : 'changed';
}

const summary = (d: RunDiff) =>
  `${d.changes.length} change(s): ${d.conformanceRegressions} conformance regression(s), ` +
  `${d.performanceRegressions} performance regression(s) (slower beyond noise); --fail-on ${d.failOn} counts ${d.regressions}`;

// ---------------------------------------------------------------------------------------------------------

export function renderDiffText(d: RunDiff): string {
  const lines = [`old: ${d.old.file} (${d.old.finishedAt})`, `new: ${d.new.file} (${d.new.finishedAt})`];
  if (d.changes.length === 0) return [...lines, 'no changes', ''].join('\n');
  let driver = '';
  for (const c of d.changes) {
    if (c.driver !== driver) lines.push(`${(driver = c.driver)}:`);
    const line = `  ${label(c).padEnd(19)} ${c.kind.padEnd(10)} ${c.key}: ${c.old} → ${c.new}`;
    lines.push(c.performance ? `${line}: ${describeJudgement(c.performance)}` : line);
  }
  if (d.changes.some(isPerformance)) lines.push(`performance noise model: ${d.noiseModel.description}`);
  for (const w of d.warnings) lines.push(`warning: ${w}`);
  lines.push(summary(d), '');
  return lines.join('\n');
}

const md = mdCell;

export function renderDiffMarkdown(d: RunDiff): string {
  const head = `### hsm-harness diff\n\n${md(d.old.file)} (${md(d.old.finishedAt)}) → ${md(d.new.file)} (${md(d.new.finishedAt)})\n\n`;
  if (d.changes.length === 0) return `${head}No changes.\n`;
  const mark = (c: Change) =>
    c.performance
      ? c.performance.verdict === 'slower beyond noise'
        ? '❌ slower beyond noise'
        : c.performance.verdict
      : c.regression
        ? '❌ regression'
        : 'changed';
  const row = (c: Change) => [mark(c), md(c.driver), c.kind, md(c.key), md(c.old), md(c.new), ...(c.performance ? [md(describeJudgement(c.performance))] : [])];
  const columns = (perf: boolean) => ['', 'Driver', 'What', 'Item', 'Old', 'New', ...(perf ? ['Change, test'] : [])];
  const table = (title: string, cs: Change[], perf: boolean) =>
    cs.length === 0 ? '' : `${title ? `${title}\n\n` : ''}${markdownTable(columns(perf), cs.map(row), (v) => v).join('\n')}\n\n`;
  // Figures within noise (or without evidence) are kept for the curious, folded away from the gate's findings.
  const quiet = (c: Change) => c.performance !== undefined && !c.performance.verdict.endsWith('beyond noise');
  const perf = d.changes.filter(isPerformance);
  const folded = perf.filter(quiet);
  return (
    `${head}**${md(summary(d))}**\n\n` +
    table(
      '#### Conformance',
      d.changes.filter((c) => !isPerformance(c)),
      false,
    ) +
    table(
      '#### Performance beyond noise',
      perf.filter((c) => !quiet(c)),
      true,
    ) +
    (folded.length
      ? `<details><summary>${folded.length} performance figure(s) within noise or without enough evidence</summary>\n\n` +
        table('', folded, true) +
        '</details>\n\n'
      : '') +
    (perf.length ? `Noise model: ${md(d.noiseModel.description)}.\n` : '') +
    d.warnings.map((w) => `\n> ⚠ ${md(w)}\n`).join('')
  );
}

export function renderDiffJson(d: RunDiff): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}
