/**
 * Benchmark reports, derived from DriverReport.sections.bench (and sections['bench-kmip']):
 * - bench.json: flat records (driver, operation, algorithm, concurrency, samples …) plus environment and versions;
 * - bench-action.json / bench-action-latency.json: github-action-benchmark's customBiggerIsBetter and
 *   customSmallerIsBetter formats (bench.md §4): arrays of { name, value, unit, range?, extra? } with names
 *   that stay stable across runs and include the driver;
 * - bench.md: tables; bench-throughput.svg and bench-documented.svg: charts.
 * Every writer renders nothing when no driver has benchmark figures.
 */
import type { DriverReport, RunResults } from '../results.js';
import type { ReportWriter } from './write.js';
import type { BenchSection, KmipBenchSection, LatencyStats } from '../../bench/types.js';
import { CONCURRENCY_LEVELS } from '../../bench/pkcs11.js';
import { ZONE_SIZES, humanDuration } from '../../bench/dnssec.js';
import { loadDocumentedTable } from '../../bench/documented.js';
import { rangeChart, throughputChart, type Panel, type RangeRow } from './svg.js';

export interface BenchRecord {
  driver: string;
  operation: 'sign' | 'sign-concurrent' | 'keygen' | 'random' | 'ods-hsmspeed' | 'hsmspeed-method' | 'hsmspeed-method-async' | 'kmip-sign' | 'kmip-sign-connections';
  algorithm: string;
  mechanism?: string;
  concurrency: number;
  samples: number;
  wallSeconds?: number;
  opsPerSec: number;
  latencyMs?: LatencyStats;
}

export interface ActionEntry {
  name: string;
  value: number;
  unit: string;
  range?: string;
  extra?: string;
}

/** Benchmarks without a driver (codec, KDF), measured by `hsm-harness bench` when their helpers exist. */
export interface MicroFigure { name: string; value: number; unit: string; extra?: string; biggerIsBetter: boolean }

type WithBench = { driver: DriverReport; bench?: BenchSection; kmip?: KmipBenchSection };

function benchDrivers(results: RunResults): WithBench[] {
  return results.drivers
    .map((driver) => ({ driver, bench: driver.sections.bench as BenchSection | undefined, kmip: driver.sections['bench-kmip'] as KmipBenchSection | undefined }))
    .filter((d) => d.bench || d.kmip);
}

export function benchRecords(results: RunResults): BenchRecord[] {
  const out: BenchRecord[] = [];
  for (const { driver, bench, kmip } of benchDrivers(results)) {
    const id = driver.id;
    for (const s of bench?.sign ?? []) out.push({ driver: id, operation: 'sign', algorithm: s.algorithm, mechanism: s.mechanism, concurrency: 1, samples: s.latency.samples, opsPerSec: s.opsPerSec, latencyMs: s.latency });
    for (const p of bench?.scaling ?? []) out.push({ driver: id, operation: 'sign-concurrent', algorithm: p.algorithm, concurrency: p.concurrency, samples: p.completed, wallSeconds: p.wallSeconds, opsPerSec: p.opsPerSec, latencyMs: p.latency });
    for (const k of bench?.keygen ?? []) out.push({ driver: id, operation: 'keygen', algorithm: k.algorithm, concurrency: 1, samples: k.latency.samples, opsPerSec: 1000 / k.latency.mean, latencyMs: k.latency });
    if (bench?.random) out.push({ driver: id, operation: 'random', algorithm: `${bench.random.bytes} bytes`, concurrency: 1, samples: bench.random.latency.samples, opsPerSec: bench.random.opsPerSec, latencyMs: bench.random.latency });
    for (const r of bench?.hsmspeed?.rows ?? []) {
      const samples = r.threads * r.iterationsPerThread;
      if (r.ods) out.push({ driver: id, operation: 'ods-hsmspeed', algorithm: 'RSA-2048', mechanism: 'CKM_RSA_PKCS', concurrency: r.threads, samples, opsPerSec: r.ods.best });
      if (r.harness) out.push({ driver: id, operation: 'hsmspeed-method', algorithm: 'RSA-2048', mechanism: 'CKM_RSA_PKCS', concurrency: r.threads, samples, opsPerSec: r.harness.best });
      if (r.harnessAsync) out.push({ driver: id, operation: 'hsmspeed-method-async', algorithm: 'RSA-2048', mechanism: 'CKM_RSA_PKCS', concurrency: r.threads, samples, opsPerSec: r.harnessAsync.best });
    }
    for (const s of kmip?.sign ?? []) out.push({ driver: id, operation: 'kmip-sign', algorithm: s.algorithm, concurrency: 1, samples: s.latency.samples, opsPerSec: s.opsPerSec, latencyMs: s.latency });
    for (const p of kmip?.connections ?? []) out.push({ driver: id, operation: 'kmip-sign-connections', algorithm: p.algorithm, concurrency: p.connections, samples: p.completed, opsPerSec: p.opsPerSec, wallSeconds: p.wallSeconds });
  }
  return out;
}

export function renderBenchJson(results: RunResults, micro: MicroFigure[] = []): string | undefined {
  const drivers = benchDrivers(results);
  if (drivers.length === 0 && micro.length === 0) return undefined;
  return JSON.stringify({
    schemaVersion: 1,
    tool: results.tool,
    startedAt: results.startedAt,
    finishedAt: results.finishedAt,
    environment: results.environment,
    drivers: drivers.map(({ driver, bench, kmip }) => ({
      id: driver.id, title: driver.title, status: driver.status,
      mode: bench?.mode ?? kmip?.mode, budgetSeconds: bench?.budgetSeconds,
      environment: bench?.environment, hsmspeed: bench?.hsmspeed, documented: bench?.documented, dnssec: bench?.dnssec,
      kmip: kmip ? { profile: kmip.profile, skipped: kmip.skipped } : undefined,
    })),
    records: benchRecords(results),
    micro,
  }, null, 2) + '\n';
}

const fix = (v: number, d = 2) => Number(v.toFixed(d));
const rme = (l: LatencyStats) => `±${l.rme.toFixed(1)}%`;

/** customBiggerIsBetter: rates. */
export function actionThroughput(results: RunResults, micro: MicroFigure[] = []): ActionEntry[] {
  const out: ActionEntry[] = micro.filter((m) => m.biggerIsBetter).map((m) => ({ name: m.name, value: fix(m.value), unit: m.unit, ...(m.extra ? { extra: m.extra } : {}) }));
  for (const { driver, bench, kmip } of benchDrivers(results)) {
    const d = driver.id;
    for (const s of bench?.sign ?? []) out.push({ name: `sign[${d}] ${s.algorithm} one session`, value: fix(s.opsPerSec), unit: 'ops/s', range: rme(s.latency), extra: `samples=${s.latency.samples} ${s.mechanism}` });
    for (const p of bench?.scaling ?? []) out.push({ name: `sign[${d}] ${p.algorithm} c=${p.concurrency}`, value: fix(p.opsPerSec), unit: 'ops/s', extra: `samples=${p.completed} wall=${p.wallSeconds.toFixed(2)}s` });
    if (bench?.random) out.push({ name: `random[${d}] ${bench.random.bytes} bytes`, value: fix(bench.random.opsPerSec), unit: 'ops/s', range: rme(bench.random.latency), extra: `samples=${bench.random.latency.samples}` });
    for (const r of bench?.hsmspeed?.rows ?? []) {
      const cfg = `RSA-2048 t=${r.threads}`;
      const extra = `${r.iterationsPerThread} signatures per thread, best of ${bench!.hsmspeed!.repetitions}`;
      if (r.ods) out.push({ name: `ods-hsmspeed[${d}] ${cfg}`, value: fix(r.ods.best), unit: 'sig/s', extra });
      if (r.harness) out.push({ name: `hsmspeed-method[${d}] ${cfg}`, value: fix(r.harness.best), unit: 'sig/s', extra });
      if (r.ratio !== undefined) out.push({ name: `harness/ods-hsmspeed[${d}] ${cfg}`, value: fix(r.ratio, 3), unit: 'ratio', extra: 'target >= 0.95' });
    }
    for (const s of kmip?.sign ?? []) out.push({ name: `kmip-sign[${d}] ${s.algorithm}`, value: fix(s.opsPerSec), unit: 'ops/s', range: rme(s.latency), extra: `samples=${s.latency.samples}` });
    for (const p of kmip?.connections ?? []) out.push({ name: `kmip-sign[${d}] ${p.algorithm} connections=${p.connections}`, value: fix(p.opsPerSec), unit: 'ops/s', extra: `completed=${p.completed} wall=${p.wallSeconds.toFixed(2)}s` });
  }
  return out;
}

/** customSmallerIsBetter: latencies (mean, ms). */
export function actionLatency(results: RunResults): ActionEntry[] {
  const out: ActionEntry[] = [];
  const entry = (name: string, l: LatencyStats): ActionEntry => ({ name, value: fix(l.mean, 4), unit: 'ms', range: rme(l), extra: `p50=${l.p50.toFixed(3)}ms p99=${l.p99.toFixed(3)}ms samples=${l.samples}` });
  for (const { driver, bench, kmip } of benchDrivers(results)) {
    const d = driver.id;
    for (const s of bench?.sign ?? []) out.push(entry(`sign latency[${d}] ${s.algorithm}`, s.latency));
    for (const k of bench?.keygen ?? []) out.push(entry(`keygen[${d}] ${k.algorithm}`, k.latency));
    if (bench?.random) out.push(entry(`random latency[${d}] ${bench.random.bytes} bytes`, bench.random.latency));
    for (const s of kmip?.sign ?? []) out.push(entry(`kmip-sign latency[${d}] ${s.algorithm}`, s.latency));
  }
  return out;
}

function table(head: string[], rows: (string | number)[][]): string {
  const cell = (v: string | number) => String(v).replace(/\|/g, '\\|');
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n') + '\n';
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
const rate = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

export function renderBenchMarkdown(results: RunResults): string | undefined {
  const drivers = benchDrivers(results);
  if (drivers.length === 0) return undefined;
  const out: string[] = ['# Benchmarks\n', `Run ${results.startedAt} on ${results.environment.hostname} (${results.environment.platform}/${results.environment.arch}, Node ${results.environment.node}). `
    + 'Speed is reported, never asserted. Signing latency is measured with blocking C_SignInit + C_Sign on one session (tinybench); '
    + 'concurrency keeps c C_SignAsync calls in flight on c sessions and divides completed signatures by wall time. '
    + 'Charts: [throughput vs concurrency](bench-throughput.svg), [measured vs documented](bench-documented.svg).\n'];
  for (const { driver, bench, kmip } of drivers) {
    out.push(`## ${driver.id} — ${driver.title}\n`);
    if (bench) {
      const e = bench.environment;
      out.push(`${bench.mode} pass, budget ${bench.budgetSeconds} s. Module ${e.module} (${e.library} ${e.libraryVersion}), token ${e.token} firmware ${e.firmwareVersion}; UV_THREADPOOL_SIZE ${e.uvThreadpoolSize}, ${e.cpus} CPUs, tinybench ${e.tinybench}.\n`);
      if (bench.sign.length) {
        out.push('### Signing (one session)\n');
        out.push(table(['Algorithm', 'DNSSEC', 'Mechanism', 'mean ms', 'p50 ms', 'p99 ms', 'rme', 'sig/s', 'samples'],
          bench.sign.map((s) => [s.algorithm, s.dnssec, s.mechanism, ms(s.latency.mean), ms(s.latency.p50), ms(s.latency.p99), `±${s.latency.rme.toFixed(1)}%`, rate(s.opsPerSec), s.latency.samples])));
      }
      if (bench.scaling.length) {
        out.push('### Aggregate throughput by operations in flight (sig/s)\n');
        const algs = [...new Set(bench.scaling.map((p) => p.algorithm))];
        out.push(table(['Algorithm', ...CONCURRENCY_LEVELS.map((c) => `c=${c}`)],
          algs.map((a) => [a, ...CONCURRENCY_LEVELS.map((c) => { const p = bench.scaling.find((x) => x.algorithm === a && x.concurrency === c); return p ? rate(p.opsPerSec) : '—'; })])));
      }
      if (bench.keygen.length) {
        out.push('### Key generation\n');
        out.push(table(['Algorithm', 'mean', 'min', 'max', 'samples'], bench.keygen.map((k) => [k.algorithm, `${ms(k.latency.mean)} ms`, `${ms(k.latency.min)} ms`, `${ms(k.latency.max)} ms`, k.latency.samples])));
      }
      if (bench.random) out.push(`Random numbers (C_GenerateRandom, ${bench.random.bytes} bytes): mean ${ms(bench.random.latency.mean)} ms, ${rate(bench.random.opsPerSec)} calls/s.\n`);
      if (bench.dnssec.length) {
        out.push('### DNSSEC view\n');
        out.push('Best concurrency per algorithm; re-sign time = RRsets ÷ sig/s (one RRSIG per RRset, one ZSK).\n');
        out.push(table(['Algorithm', 'As Cascade prints it', 'in flight', ...Object.keys(ZONE_SIZES).map((z) => `${z} RRsets`)],
          bench.dnssec.map((v) => [`${v.algorithm} (${v.dnssec})`, v.line, v.bestConcurrency, ...Object.keys(ZONE_SIZES).map((z) => humanDuration(v.resignSeconds[z]!))])));
      }
      if (bench.hsmspeed) {
        out.push('### Side by side with ods-hsmspeed\n');
        if (bench.hsmspeed.skipped) out.push(`Skipped: ${bench.hsmspeed.skipped}\n`);
        else {
          out.push(`Same method on both sides: RSA-2048, SHA-1 + DigestInfo in software, CKM_RSA_PKCS, one session per thread, C_SignInit per signature, wall-clock rate; run alternately, best of ${bench.hsmspeed.repetitions}. Target ratio ≥ 0.95.\n`);
          out.push(table(['Configuration', 'ods-hsmspeed sig/s', 'harness sig/s', 'ratio', 'harness via C_SignAsync sig/s', 'async ratio'],
            bench.hsmspeed.rows.map((r) => [`${r.threads} ${r.threads === 1 ? 'thread' : 'threads'}, ${r.iterationsPerThread} signatures per thread`,
              r.ods ? r.ods.best.toFixed(2) : `failed: ${r.odsError ?? ''}`, r.harness ? r.harness.best.toFixed(2) : `failed: ${r.harnessError ?? ''}`,
              r.ratio !== undefined ? r.ratio.toFixed(3) : '—', r.harnessAsync ? r.harnessAsync.best.toFixed(2) : '—', r.asyncRatio !== undefined ? r.asyncRatio.toFixed(3) : '—'])));
        }
      }
      if (bench.documented) {
        const doc = bench.documented;
        out.push(`### Documented ${doc.family} figures\n`);
        out.push(`${doc.applies ? 'This driver is the documented device: each figure gets a verdict.' : `Reference only: this driver is not a ${doc.family}.`} Source: ${doc.source}.\n`);
        out.push(table(['Operation', 'Documented', 'Measured', doc.applies ? 'Verdict' : 'Note', 'Notes'],
          doc.rows.map((r) => [r.operation, r.documented, r.measuredMs !== undefined ? `${ms(r.measuredMs)} ms` : '—',
            doc.applies ? (r.verdict ?? 'not measured') : 'reference', [r.notes, r.suspect ? `suspect: ${r.suspect}` : ''].filter(Boolean).join('; ')])));
      }
    }
    if (kmip) {
      out.push('### KMIP Sign round trips\n');
      if (kmip.skipped) out.push(`Skipped: ${kmip.skipped}\n`);
      else out.push(table(['Algorithm', 'mean ms', 'p99 ms', 'rme', 'round trips/s'], kmip.sign.map((s) => [s.algorithm, ms(s.latency.mean), ms(s.latency.p99), `±${s.latency.rme.toFixed(1)}%`, rate(s.opsPerSec)])));
      if (kmip.connections?.length) out.push(table(['Algorithm', 'connections', 'round trips', 'wall s', 'round trips/s'], kmip.connections.map((p) => [p.algorithm, String(p.connections), String(p.completed), p.wallSeconds.toFixed(2), rate(p.opsPerSec)])));
    }
  }
  return out.join('\n');
}

export function renderThroughputSvg(results: RunResults): string | undefined {
  const drivers = benchDrivers(results).filter((d) => d.bench && d.bench.scaling.length);
  if (drivers.length === 0) return undefined;
  const algs = [...new Set(drivers.flatMap((d) => d.bench!.scaling.map((p) => p.algorithm)))];
  const panels: Panel[] = algs.map((a) => ({
    title: a,
    series: drivers.map((d) => ({ driver: d.driver.id, points: d.bench!.scaling.filter((p) => p.algorithm === a).map((p) => ({ x: p.concurrency, y: p.opsPerSec })) }))
      .filter((s) => s.points.length),
  }));
  return throughputChart('Signing throughput (sig/s) by operations in flight', CONCURRENCY_LEVELS, panels);
}

export function renderDocumentedSvg(results: RunResults): string | undefined {
  const drivers = benchDrivers(results).filter((d) => d.bench?.documented);
  if (drivers.length === 0) return undefined;
  const table = loadDocumentedTable();
  const rows: RangeRow[] = table.rows.filter((r) => r.measure).map((r) => ({
    label: r.operation, min: r.minMs, max: r.maxMs, suspect: !!r.suspect,
    measured: drivers.flatMap((d) => {
      const m = d.bench!.documented!.rows.find((x) => x.operation === r.operation)?.measuredMs;
      return m !== undefined ? [{ driver: d.driver.id, ms: m }] : [];
    }),
  }));
  return rangeChart(`Measured vs documented (${table.family}, seed 004)`, rows);
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

export const benchWriters: ReportWriter[] = [
  { file: 'bench.json', render: renderBenchJson },
  { file: 'bench-action.json', render: (r) => (benchDrivers(r).length ? json(actionThroughput(r)) : undefined) },
  { file: 'bench-action-latency.json', render: (r) => (benchDrivers(r).length ? json(actionLatency(r)) : undefined) },
  { file: 'bench.md', render: renderBenchMarkdown },
  { file: 'bench-throughput.svg', render: renderThroughputSvg },
  { file: 'bench-documented.svg', render: renderDocumentedSvg },
];

/**
 * What `hsm-harness bench` writes: only the benchmark files, so a previous run's results.json stays; the
 * driver-less figures (KMIP codec, DKEK KDF) join bench.json and bench-action.json.
 */
export function benchWritersWith(micro: MicroFigure[]): ReportWriter[] {
  const withMicro: ReportWriter[] = [
    { file: 'bench.json', render: (r) => renderBenchJson(r, micro) },
    { file: 'bench-action.json', render: (r) => (benchDrivers(r).length || micro.length ? json(actionThroughput(r, micro)) : undefined) },
  ];
  return benchWriters.map((w) => withMicro.find((x) => x.file === w.file) ?? w);
}
