/**
 * The merged view of many runs: one row per token × firmware × module version, one column per DNSSEC
 * signer. Each cell holds the verdict of the most recent run that gave one, and names that run (its id,
 * driver and date), so every claim on the site can be traced to the results.json that proved it.
 */
import { basename } from 'node:path';
import { basisLabel, verdictLabel, type DriverIdentity, type DriverReport, type PackageVersion } from '../results.js';
import type { BenchRecord } from '../bench-format.js';
import type { LoadedRun } from './load.js';
import { markdownTable, mdCell } from '../reports/markdown.js';
import { judge, perfFigure, type PerfFigure, type PerfJudgement } from './noise.js';

export interface RunRef {
  runId: string;
  driver: string;
  date: string;
}

export interface MatrixCell extends RunRef {
  label: 'suitable' | 'not suitable' | 'not tested';
  /** "proven by run (…)" or "from profile (unverified)". */
  basis: string;
  reasons: string[];
  /** Other runs that gave a verdict for this cell (older, or tied and overruled). */
  otherRuns: number;
}

export interface MatrixRow {
  key: string;
  product: string;
  firmware: string;
  module: string;
  interface: string;
  /** Driver ids that reached this target, in every run merged. */
  drivers: string[];
  /** signer → cell; a signer with no verdict for this row has no entry. */
  cells: Record<string, MatrixCell>;
  /** The most recent run of this target, with or without verdicts. */
  lastRun: RunRef;
  runs: number;
}

export interface BenchPoint extends RunRef {
  opsPerSec: number;
  rme?: number;
  /** Against the previous point of the series, by the noise model of diff (./noise.ts, default threshold). */
  trend?: PerfJudgement;
}
export interface BenchSeries {
  name: string;
  points: BenchPoint[];
}

export interface FleetMatrix {
  signers: string[];
  rows: MatrixRow[];
  /** product → its benchmark series, oldest point first. */
  bench: Record<string, BenchSeries[]>;
  runs: { id: string; file: string; date: string; version: string; commit?: string; host: string; labels: string[]; runUrl?: string; drivers: string[] }[];
}

const pkg = (p?: PackageVersion) => (p ? ` (${p.name} ${p.version})` : '');

/** "libsofthsm2.so 2.6 (libsofthsm2 2.6.1-2.1)"; a proxy adds "→" and the module behind it. */
export function moduleLabel(id: DriverIdentity): string {
  if (id.module) {
    const own = `${basename(id.module.path)} ${id.module.version}${pkg(id.module.package)}`;
    return id.provider ? `${own} → ${basename(id.provider.path)}${pkg(id.provider.package)}` : own;
  }
  if (id.server) return `${id.server.executable ? basename(id.server.executable) : id.server.product}${pkg(id.server.package)}`;
  return '';
}

export function interfaceLabel(d: DriverReport): string {
  return d.kind === 'pkcs11' ? 'PKCS#11' : d.kind === 'kmip' ? 'KMIP' : d.kind === 'nethsm' ? 'REST' : d.kind;
}

/** Later date first; the run id breaks ties so the result does not depend on argument order. */
const newer = (a: RunRef, b: RunRef) => (a.date !== b.date ? a.date > b.date : a.runId > b.runId);

export function buildMatrix(runs: LoadedRun[]): FleetMatrix {
  const signers: string[] = [];
  const rows = new Map<string, MatrixRow>();
  const bench: Record<string, Map<string, BenchSeries>> = {};
  const figures = new Map<BenchPoint, PerfFigure>();
  for (const run of runs) {
    const date = run.results.finishedAt;
    for (const d of run.results.drivers) {
      if (!d.available || !d.identity) continue;
      const id = d.identity;
      const row = { product: id.product, firmware: id.firmware ?? '', module: moduleLabel(id), interface: interfaceLabel(d) };
      const key = JSON.stringify([row.product, row.firmware, row.module, row.interface]);
      const ref: RunRef = { runId: run.id, driver: d.id, date };
      let r = rows.get(key);
      if (!r) rows.set(key, (r = { key, ...row, drivers: [], cells: {}, lastRun: ref, runs: 0 }));
      r.runs++;
      if (!r.drivers.includes(d.id)) r.drivers.push(d.id);
      if (newer(ref, r.lastRun)) r.lastRun = ref;
      for (const v of d.suitability) {
        if (!signers.includes(v.signer)) signers.push(v.signer);
        const cell: MatrixCell = { ...ref, label: verdictLabel(v), basis: basisLabel(v), reasons: v.reasons, otherRuns: 0 };
        const old = r.cells[v.signer];
        if (!old) r.cells[v.signer] = cell;
        else if (newer(cell, old)) r.cells[v.signer] = { ...cell, otherRuns: old.otherRuns + 1 };
        else old.otherRuns++;
      }
    }
    for (const rec of run.bench) addBench(bench, figures, run, rec);
  }
  const sortedRows = [...rows.values()].sort(
    (a, b) =>
      a.product.localeCompare(b.product) || a.interface.localeCompare(b.interface) || a.firmware.localeCompare(b.firmware) || a.module.localeCompare(b.module),
  );
  return {
    signers,
    rows: sortedRows,
    bench: Object.fromEntries(
      Object.entries(bench)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([product, m]) => [
          product,
          [...m.values()]
            .sort((a, b) => a.name.localeCompare(b.name))
            .map((s) => ({
              ...s,
              points: withTrend(
                s.points.sort((a, b) => (newer(a, b) ? 1 : -1)),
                figures,
              ),
            })),
        ]),
    ),
    runs: runs
      .map((r) => ({
        id: r.id,
        file: r.file,
        date: r.results.finishedAt,
        version: r.results.identity.harness.version,
        commit: r.results.identity.harness.commit,
        host: r.results.identity.machine.hostname,
        labels: r.results.identity.runner.labels,
        runUrl: r.results.identity.runner.runUrl,
        drivers: r.results.drivers.filter((d) => d.available).map((d) => d.id),
      }))
      .sort((a, b) => (a.date !== b.date ? (a.date < b.date ? 1 : -1) : a.id < b.id ? 1 : -1)),
  };
}

/** Benchmark figures per product, one series per driver × operation × algorithm × concurrency. */
function addBench(bench: Record<string, Map<string, BenchSeries>>, figures: Map<BenchPoint, PerfFigure>, run: LoadedRun, rec: BenchRecord): void {
  const d = run.results.drivers.find((x) => x.id === rec.driver);
  const product = d?.identity?.product ?? d?.title ?? rec.driver;
  const name = `${rec.operation} ${rec.algorithm}${rec.concurrency > 1 ? ` ×${rec.concurrency}` : ''} [${rec.driver}]`;
  const series = (bench[product] ??= new Map());
  let s = series.get(name);
  if (!s) series.set(name, (s = { name, points: [] }));
  const point: BenchPoint = { runId: run.id, driver: rec.driver, date: run.results.finishedAt, opsPerSec: rec.opsPerSec };
  if (rec.latencyMs?.rme !== undefined) point.rme = rec.latencyMs.rme;
  s.points.push(point);
  figures.set(point, perfFigure(rec));
}

/** Each point after the first judged against the one before it, oldest first. */
function withTrend(points: BenchPoint[], figures: Map<BenchPoint, PerfFigure>): BenchPoint[] {
  for (let i = 1; i < points.length; i++) points[i]!.trend = judge(figures.get(points[i - 1]!)!, figures.get(points[i]!)!);
  return points;
}

// ---------------------------------------------------------------------------------------------------------
// The "tested HSMs" table, for a manual: Markdown and reStructuredText.

const SHORT_SIGNER = (s: string) => s.replace(/\s*\(.*\)\s*$/, '');
const day = (iso: string) => iso.slice(0, 10);

function testedRows(m: FleetMatrix): string[][] {
  return m.rows.map((r) => [
    r.product,
    r.firmware || '–',
    r.interface,
    r.module || '–',
    ...m.signers.map((s) => r.cells[s]?.label ?? '–'),
    day(r.lastRun.date),
  ]);
}

function testedHeader(m: FleetMatrix): string[] {
  return ['HSM', 'Firmware', 'Interface', 'Module', ...m.signers.map(SHORT_SIGNER), 'Last tested'];
}

export function renderTestedMarkdown(m: FleetMatrix): string {
  const head = testedHeader(m);
  return [
    '<!-- Generated by hsm-harness merge from machine-checked runs; do not edit by hand. -->',
    '',
    ...markdownTable(head, testedRows(m), mdCell),
    '',
  ].join('\n');
}

/** Inline markup characters are escaped with a backslash; a list-table has no column separators to break. */
const rstCell = (s: string) =>
  s
    .replace(/[\r\n]+/g, ' ')
    .replace(/([\\*`_|[\]<>:])/g, '\\$1')
    .replace(/^([-+#]|\d+[.)])(?=\s|$)/, '\\$1');

export function renderTestedRst(m: FleetMatrix): string {
  const rows = [testedHeader(m), ...testedRows(m)];
  const lines = [
    '.. Generated by hsm-harness merge from machine-checked runs; do not edit by hand.',
    '',
    '.. list-table:: Tested HSMs',
    '   :header-rows: 1',
    '',
  ];
  for (const r of rows) {
    for (const [i, c] of r.entries()) lines.push(`   ${i === 0 ? '*' : ' '} - ${rstCell(c) || '\\ '}`);
  }
  lines.push('');
  return lines.join('\n');
}
