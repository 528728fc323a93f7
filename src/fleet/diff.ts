/**
 * What changed between two runs of the same tokens (after a firmware, module or OpenSC upgrade): cases whose
 * status changed, golden return codes that changed, capabilities and mechanisms gained or lost, signer
 * verdicts that flipped, and throughput that moved by more than both runs' measured spread. Drivers are
 * matched by id. Each change says whether it is a regression; `hsm-harness diff` exits 1 when one is.
 */
import { verdictLabel, type CaseStatus, type DriverReport } from '../results.js';
import type { BenchRecord } from '../bench-format.js';
import type { LoadedRun } from './load.js';
import { moduleLabel } from './matrix.js';
import { markdownTable, mdCell } from '../reports/markdown.js';

export type ChangeKind = 'driver' | 'identity' | 'case' | 'golden' | 'capability' | 'mechanism' | 'verdict' | 'throughput';

export interface Change {
  driver: string;
  kind: ChangeKind;
  /** What changed: a case (suite/case), a golden situation, a capability, a mechanism, a signer, a benchmark series. */
  key: string;
  old: string;
  new: string;
  regression: boolean;
}

export interface RunDiff {
  schemaVersion: 1;
  old: { file: string; finishedAt: string };
  new: { file: string; finishedAt: string };
  changes: Change[];
  regressions: number;
}

const ABSENT = 'absent';
const BAD = new Set<string>(['fail', 'crash', 'timeout']);

/** Worse means: it passed and no longer does, or it now fails, crashes or times out where it did not. */
export function caseRegressed(old: CaseStatus | typeof ABSENT, now: CaseStatus | typeof ABSENT): boolean {
  if (now === ABSENT) return false; // not run this time (another suite selection): listed, but proves nothing worse
  return (old === 'pass' && now !== 'pass') || (BAD.has(now) && !BAD.has(old));
}

const VERDICT_RANK = { suitable: 2, 'not tested': 1, 'not suitable': 0 } as const;

export function diffRuns(oldRun: LoadedRun, newRun: LoadedRun): RunDiff {
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
  diffBench(oldRun.bench, newRun.bench, add);
  return {
    schemaVersion: 1,
    old: { file: oldRun.file, finishedAt: oldRun.results.finishedAt },
    new: { file: newRun.file, finishedAt: newRun.results.finishedAt },
    changes,
    regressions: changes.filter((c) => c.regression).length,
  };
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
  for (const k of union(Object.keys(o.capabilities), Object.keys(n.capabilities))) {
    const a = o.capabilities[k],
      b = n.capabilities[k];
    if (a === b) continue;
    const show = (v: boolean | undefined) => (v === undefined ? 'not recorded' : v ? 'works' : 'does not work');
    add(id, 'capability', k, show(a), show(b), a === true);
  }
  const om = new Map(o.mechanisms.map((m) => [m.name, m])),
    nm = new Map(n.mechanisms.map((m) => [m.name, m]));
  for (const k of union(om.keys(), nm.keys())) {
    const a = om.get(k),
      b = nm.get(k);
    if (!a || !b) {
      add(id, 'mechanism', k, a ? 'offered' : ABSENT, b ? 'offered' : ABSENT, !b);
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

/**
 * Throughput moved when the two runs' measurements do not overlap:
 * - figures timed as repeated batches (rates): every batch of one run is slower than every batch of the other;
 * - per-operation latencies: the two rates are further apart than their margins of error (rme, 95 %) together.
 * A figure with neither (a single sample, a best-of-N side by side without its batches) is not compared: no
 * honest threshold exists for it.
 */
function diffBench(oldRecs: BenchRecord[], newRecs: BenchRecord[], add: Add): void {
  const key = (r: BenchRecord) => `${r.operation} ${r.algorithm} c=${r.concurrency}`;
  const newer = new Map(newRecs.map((r) => [`${r.driver}\0${key(r)}`, r]));
  for (const a of oldRecs) {
    const b = newer.get(`${a.driver}\0${key(a)}`);
    if (!b) continue;
    const moved = apart(a, b);
    if (moved === undefined || !moved) continue;
    add(a.driver, 'throughput', key(a), showRate(a), showRate(b), b.opsPerSec < a.opsPerSec);
  }
}

const batches = (r: BenchRecord) => (r.rates && r.rates.length >= 2 ? r.rates : undefined);
/** A margin of error needs at least two samples; from one (a single slow key generation) it reads as 0 %. */
const rme = (r: BenchRecord) => (r.latencyMs && r.latencyMs.samples >= 2 && r.latencyMs.rme > 0 ? r.latencyMs.rme : undefined);

/** true: beyond the measured spread; false: within it; undefined: no spread measured, not compared. */
function apart(a: BenchRecord, b: BenchRecord): boolean | undefined {
  const ra = batches(a),
    rb = batches(b);
  if (ra && rb) return Math.max(...rb) < Math.min(...ra) || Math.min(...rb) > Math.max(...ra);
  const ea = rme(a),
    eb = rme(b);
  if (ea !== undefined && eb !== undefined) return Math.abs(b.opsPerSec - a.opsPerSec) > (a.opsPerSec * ea + b.opsPerSec * eb) / 100;
  return undefined;
}

function showRate(r: BenchRecord): string {
  const rates = batches(r);
  if (rates) return `${r.opsPerSec.toFixed(1)} ops/s (batches ${Math.min(...rates).toFixed(1)}–${Math.max(...rates).toFixed(1)})`;
  return `${r.opsPerSec.toFixed(1)} ops/s ±${r.latencyMs!.rme.toFixed(1)}%`;
}

// ---------------------------------------------------------------------------------------------------------

export function renderDiffText(d: RunDiff): string {
  const lines = [`old: ${d.old.file} (${d.old.finishedAt})`, `new: ${d.new.file} (${d.new.finishedAt})`];
  if (d.changes.length === 0) return [...lines, 'no changes', ''].join('\n');
  let driver = '';
  for (const c of d.changes) {
    if (c.driver !== driver) lines.push(`${(driver = c.driver)}:`);
    lines.push(`  ${c.regression ? 'REGRESSION' : 'changed   '} ${c.kind.padEnd(10)} ${c.key}: ${c.old} → ${c.new}`);
  }
  lines.push(`${d.changes.length} change(s), ${d.regressions} regression(s)`, '');
  return lines.join('\n');
}

const md = mdCell;

export function renderDiffMarkdown(d: RunDiff): string {
  const head = `### hsm-harness diff\n\n${md(d.old.file)} (${md(d.old.finishedAt)}) → ${md(d.new.file)} (${md(d.new.finishedAt)})\n\n`;
  if (d.changes.length === 0) return `${head}No changes.\n`;
  const rows = d.changes.map((c) => [c.regression ? '❌ regression' : 'changed', md(c.driver), c.kind, md(c.key), md(c.old), md(c.new)]);
  const table = markdownTable(['', 'Driver', 'What', 'Item', 'Old', 'New'], rows, (v) => v);
  return `${head}**${d.regressions} regression(s)** in ${d.changes.length} change(s).\n\n${table.join('\n')}\n`;
}

export function renderDiffJson(d: RunDiff): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}
