/**
 * Benchmark reports, derived from DriverReport.sections.bench (and sections['bench-kmip']):
 * - bench.json: flat records (driver, operation, algorithm, concurrency, samples …) plus environment and versions;
 * - bench-action.json / bench-action-latency.json: github-action-benchmark's customBiggerIsBetter and
 *   customSmallerIsBetter formats (benchmark-action/github-action-benchmark, src/extract.ts): arrays of
 *   { name, value, unit, range?, extra? } with names that stay stable across runs and include the driver;
 * - bench.md: tables; bench-throughput.svg and bench-documented.svg: charts.
 * - index.html: each driver's bench and bench-kmip sections; across drivers the charts and the real signers' zone-signing tables.
 * Every writer renders nothing when no driver has benchmark figures. suites/bench.ts and suites/bench-kmip.ts
 * carry benchReport and kmipBenchReport, so the report writers find them without importing this file.
 */
import type { DriverReport, RunResults } from '../src/results.js';
import type { ReportWriter, SectionReport } from '../src/reports/sections.js';
import { isPlainObject, pill, renderValue, table as htmlTable } from '../src/reports/html.js';
import { esc } from '../src/reports/page.js';
import { markdownTable } from '../src/reports/markdown.js';
import { rangeChart, throughputChart, type Panel, type RangeRow } from '../src/reports/svg.js';
import type { BenchSection, KmipBenchSection, LatencyStats, RateFigure, SignFigure } from './types.js';
import type { BenchRecord } from '../src/bench-format.js';

export type { BenchRecord };
import { ZONE_SIZES, humanDuration } from './dnssec.js';
import { loadDocumentedTable } from './documented.js';

export interface ActionEntry {
  name: string;
  value: number;
  unit: string;
  range?: string;
  extra?: string;
}

/** Benchmarks without a driver (codec, KDF), measured by `hsm-harness bench` when their helpers exist. */
export interface MicroFigure {
  name: string;
  value: number;
  unit: string;
  extra?: string;
  biggerIsBetter: boolean;
}

type WithBench = { driver: DriverReport; bench?: BenchSection; kmip?: KmipBenchSection };

function benchDrivers(results: RunResults): WithBench[] {
  return results.drivers
    .map((driver) => ({ driver, bench: driver.sections.bench, kmip: driver.sections['bench-kmip'] }))
    .filter((d) => d.bench || d.kmip || zoneSigningRecords(d.driver).length > 0);
}

/**
 * Zone-signing figures of the signers suite (sections.signers …cases[].speed): per signer × algorithm × zone size,
 * RRSIGs/s, beside the token's raw rate from the same run's bench; the ratio is computed here from those two figures.
 */
export function zoneSigningRecords(driver: DriverReport): BenchRecord[] {
  const out: BenchRecord[] = [];
  for (const s of driver.sections.signers?.signers ?? []) {
    for (const c of s.cases) {
      for (const f of c.speed ?? []) {
        out.push({
          driver: driver.id,
          operation: 'zone-signing',
          signer: s.id,
          algorithm: c.case.split('/').slice(1).join('/'),
          concurrency: 1,
          samples: f.rrsigs,
          records: f.records,
          rrsigs: f.rrsigs,
          wallSeconds: f.seconds,
          opsPerSec: f.rrsigsPerSecond,
          ...(f.tokenRawRate ? { tokenRawRate: f.tokenRawRate, vsTokenRaw: Number((f.rrsigsPerSecond / f.tokenRawRate).toFixed(4)) } : {}),
        });
      }
    }
  }
  return out;
}

/** The machine's own speed in the rounds of a figure's batches, when it was measured in those rounds. */
function machineRates(s: SignFigure, f: RateFigure): { machineRates?: number[] } {
  return s.machine && s.machine.rates.length === f.rates.length ? { machineRates: s.machine.rates } : {};
}

export function benchRecords(results: RunResults): BenchRecord[] {
  const out: BenchRecord[] = [];
  for (const { driver, bench, kmip } of benchDrivers(results)) {
    const id = driver.id;
    for (const s of bench?.sign ?? []) {
      const base = { driver: id, algorithm: s.algorithm, mechanism: s.mechanism };
      out.push({ ...base, operation: 'sign-latency', concurrency: 1, samples: s.latency.samples, opsPerSec: 1000 / s.latency.mean, latencyMs: s.latency });
      out.push({
        ...base,
        operation: 'sign-bare-loop',
        concurrency: 1,
        samples: s.bareLoop.rates.length * s.bareLoop.operationsPerBatch,
        opsPerSec: s.bareLoop.median,
        best: s.bareLoop.best,
        rates: s.bareLoop.rates,
        ...machineRates(s, s.bareLoop),
      });
      const threadFigures = [
        ...s.threads.map((t) => ({ t, operation: 'sign-threads' as const })),
        ...(s.keyPerThread ?? []).map((t) => ({ t, operation: 'sign-threads-key-each' as const })),
      ];
      for (const { t, operation } of threadFigures) {
        out.push({
          ...base,
          operation,
          concurrency: t.threads,
          samples: t.rates.length * t.operationsPerBatch,
          opsPerSec: t.median,
          best: t.best,
          rates: t.rates,
          ...machineRates(s, t),
          ...(t.threads === 1 ? { vsBareLoop: s.vsBareLoop } : t.vsOneThread !== undefined ? { vsOneThread: t.vsOneThread } : {}),
        });
      }
      const e = s.eventLoop;
      if (e) {
        out.push({
          ...base,
          operation: 'sign-event-loop',
          concurrency: e.inFlight,
          samples: e.completed,
          wallSeconds: e.wallSeconds,
          opsPerSec: e.opsPerSec,
          latencyMs: e.latency,
        });
      }
    }
    for (const k of bench?.keygen ?? [])
      out.push({
        driver: id,
        operation: 'keygen',
        algorithm: k.algorithm,
        concurrency: 1,
        samples: k.latency.samples,
        opsPerSec: 1000 / k.latency.mean,
        latencyMs: k.latency,
      });
    if (bench?.random)
      out.push({
        driver: id,
        operation: 'random',
        algorithm: `${bench.random.bytes} bytes`,
        concurrency: 1,
        samples: bench.random.latency.samples,
        opsPerSec: bench.random.opsPerSec,
        latencyMs: bench.random.latency,
      });
    for (const r of bench?.hsmspeed?.rows ?? []) {
      const samples = r.threads * r.iterationsPerThread;
      const base = { driver: id, algorithm: 'RSA-2048', mechanism: 'CKM_RSA_PKCS', concurrency: r.threads, samples };
      if (r.ods) out.push({ ...base, operation: 'ods-hsmspeed', opsPerSec: r.ods.best, best: r.ods.best, rates: r.ods.rates });
      if (r.harness) {
        out.push({
          ...base,
          operation: 'hsmspeed-method',
          opsPerSec: r.harness.best,
          best: r.harness.best,
          rates: r.harness.rates,
          ...(r.ratio !== undefined ? { vsOdsHsmspeed: r.ratio } : {}),
        });
      }
    }
    for (const s of kmip?.sign ?? [])
      out.push({
        driver: id,
        operation: 'kmip-sign',
        algorithm: s.algorithm,
        concurrency: 1,
        samples: s.latency.samples,
        opsPerSec: s.opsPerSec,
        latencyMs: s.latency,
      });
    for (const p of kmip?.connections ?? [])
      out.push({
        driver: id,
        operation: 'kmip-sign-connections',
        algorithm: p.algorithm,
        concurrency: p.connections,
        samples: p.completed,
        opsPerSec: p.opsPerSec,
        wallSeconds: p.wallSeconds,
      });
    out.push(...zoneSigningRecords(driver));
  }
  return out;
}

export function renderBenchJson(results: RunResults, micro: MicroFigure[] = []): string | undefined {
  const drivers = benchDrivers(results);
  if (drivers.length === 0 && micro.length === 0) return undefined;
  return `${JSON.stringify(
    {
      schemaVersion: 1,
      tool: results.tool,
      startedAt: results.startedAt,
      finishedAt: results.finishedAt,
      environment: results.environment,
      drivers: drivers.map(({ driver, bench, kmip }) => ({
        id: driver.id,
        title: driver.title,
        status: driver.status,
        mode: bench?.mode ?? kmip?.mode,
        budgetSeconds: bench?.budgetSeconds,
        environment: bench?.environment,
        threadLevels: bench?.threadLevels,
        rejected: bench?.rejected,
        hsmspeed: bench?.hsmspeed,
        documented: bench?.documented,
        dnssec: bench?.dnssec,
        kmip: kmip ? { profile: kmip.profile, skipped: kmip.skipped } : undefined,
      })),
      method: METHOD,
      records: benchRecords(results),
      micro,
    },
    null,
    2,
  )}\n`;
}

const fix = (v: number, d = 2) => Number(v.toFixed(d));
const rme = (l: LatencyStats) => `±${l.rme.toFixed(1)}%`;

/** customBiggerIsBetter: rates. */
export function actionThroughput(results: RunResults, micro: MicroFigure[] = []): ActionEntry[] {
  const out: ActionEntry[] = micro
    .filter((m) => m.biggerIsBetter)
    .map((m) => ({ name: m.name, value: fix(m.value), unit: m.unit, ...(m.extra ? { extra: m.extra } : {}) }));
  for (const { driver, bench, kmip } of benchDrivers(results)) {
    const d = driver.id;
    for (const s of bench?.sign ?? []) {
      const spread = (f: { worst: number; best: number }) => `${fix(f.worst)}-${fix(f.best)}`;
      const batches = (f: { rates: number[] }) => `median of ${f.rates.length} batches`;
      const bare = s.bareLoop;
      out.push({ name: `sign[${d}] ${s.algorithm} bare loop`, value: fix(bare.median), unit: 'ops/s', range: spread(bare), extra: batches(bare) });
      for (const t of s.threads) {
        out.push({ name: `sign[${d}] ${s.algorithm} threads=${t.threads}`, value: fix(t.median), unit: 'ops/s', range: spread(t), extra: batches(t) });
      }
      for (const t of s.keyPerThread ?? []) {
        out.push({ name: `sign[${d}] ${s.algorithm} threads=${t.threads} key each`, value: fix(t.median), unit: 'ops/s', range: spread(t), extra: batches(t) });
      }
      out.push({
        name: `harness/bare-loop[${d}] ${s.algorithm}`,
        value: fix(s.vsBareLoop, 3),
        unit: 'ratio',
        extra: 'one signer thread, best batch each; target >= 0.95',
      });
      if (s.eventLoop) {
        const e = s.eventLoop;
        out.push({ name: `sign[${d}] ${s.algorithm} event loop`, value: fix(e.opsPerSec), unit: 'ops/s', extra: `C_SignAsync, ${e.inFlight} in flight` });
      }
    }
    if (bench?.random)
      out.push({
        name: `random[${d}] ${bench.random.bytes} bytes`,
        value: fix(bench.random.opsPerSec),
        unit: 'ops/s',
        range: rme(bench.random.latency),
        extra: `samples=${bench.random.latency.samples}`,
      });
    for (const r of bench?.hsmspeed?.rows ?? []) {
      const cfg = `RSA-2048 t=${r.threads}`;
      const extra = `${r.iterationsPerThread} signatures per thread, best of ${bench!.hsmspeed!.repetitions}`;
      if (r.ods) out.push({ name: `ods-hsmspeed[${d}] ${cfg}`, value: fix(r.ods.best), unit: 'sig/s', extra });
      if (r.harness) out.push({ name: `hsmspeed-method[${d}] ${cfg}`, value: fix(r.harness.best), unit: 'sig/s', extra });
      if (r.ratio !== undefined) out.push({ name: `harness/ods-hsmspeed[${d}] ${cfg}`, value: fix(r.ratio, 3), unit: 'ratio', extra: 'target >= 0.95' });
    }
    for (const s of kmip?.sign ?? [])
      out.push({
        name: `kmip-sign[${d}] ${s.algorithm}`,
        value: fix(s.opsPerSec),
        unit: 'ops/s',
        range: rme(s.latency),
        extra: `samples=${s.latency.samples}`,
      });
    for (const p of kmip?.connections ?? [])
      out.push({
        name: `kmip-sign[${d}] ${p.algorithm} connections=${p.connections}`,
        value: fix(p.opsPerSec),
        unit: 'ops/s',
        extra: `completed=${p.completed} wall=${p.wallSeconds.toFixed(2)}s`,
      });
  }
  return out;
}

/** customSmallerIsBetter: latencies (mean, ms). */
export function actionLatency(results: RunResults): ActionEntry[] {
  const out: ActionEntry[] = [];
  const entry = (name: string, l: LatencyStats): ActionEntry => ({
    name,
    value: fix(l.mean, 4),
    unit: 'ms',
    range: rme(l),
    extra: `p50=${l.p50.toFixed(3)}ms p99=${l.p99.toFixed(3)}ms samples=${l.samples}`,
  });
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
  return `${markdownTable(head, rows).join('\n')}\n`;
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
const rate = (v: number) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));
const spreadOf = (f: RateFigure) => `${rate(f.median)} (${rate(f.worst)}–${rate(f.best)})`;

/** How the figures are measured, stated in every report (bench.md, bench.json, the HTML). */
export const METHOD =
  'Throughput is timed as a whole: repeated batches of blocking C_SignInit + C_Sign in a tight loop, ' +
  "each batch's rate = its signatures / its wall time; shown as median (slowest–fastest batch). The harness's figure comes from " +
  'signer threads (worker_threads, one session each, synchronous calls); a bare pkcs11js loop on one session runs beside it in ' +
  'alternating batches; harness ÷ bare loop and × one thread are medians over rounds of batch ÷ batch of the same round. Latency (p50/p99) is timed per operation with ' +
  'tinybench. The event-loop figure is what a Node application gets with C_SignAsync (one call in flight per session). ' +
  "In every round the machine's own speed is measured too (node:crypto signing with a key of the same kind on the harness's " +
  'thread), so that diff can tell a token that changed from a machine that did. ' +
  'A figure is published only if a sample of its signatures verified with node:crypto. Speed is reported, never asserted.';

export const KEYING =
  '"one key": every thread signs with the same key, as a signer of one zone does. "a key each": thread i signs with key i, as a ' +
  'signer of several zones does. A token that serialises the use of one key object scales only in the second row.';

/** The thread-scaling rows of one algorithm: all threads on one key, then (where measured) a key per thread. */
function threadRows(s: SignFigure): { keys: string; figures: SignFigure['threads'] }[] {
  return [{ keys: 'one key', figures: s.threads }, ...(s.keyPerThread?.length ? [{ keys: 'a key each', figures: s.keyPerThread }] : [])];
}

/** One line per signing algorithm for the console: one session, the bare loop, their ratio and the scaling. */
export function signSummary(s: SignFigure): string {
  const one = s.threads[0]!;
  const x = (t: { vsOneThread?: number }) => `${(t.vsOneThread ?? Number.NaN).toFixed(2)}× one thread`;
  const scaling = [
    ...s.threads.slice(1).map((t) => `${t.threads} threads on one key ${t.median.toFixed(1)} sig/s (${x(t)})`),
    ...(s.keyPerThread ?? []).map((t) => `${t.threads} threads with a key each ${t.median.toFixed(1)} sig/s (${x(t)})`),
  ];
  const ev = s.eventLoop ? `; event loop (C_SignAsync, ${s.eventLoop.inFlight} in flight) ${s.eventLoop.opsPerSec.toFixed(1)} sig/s` : '';
  return (
    `sign ${s.algorithm}: one session ${one.median.toFixed(1)} sig/s, bare pkcs11js loop ${s.bareLoop.median.toFixed(1)} sig/s, ` +
    `ratio ${s.vsBareLoop.toFixed(3)}${scaling.map((t) => `, ${t}`).join('')}${ev}`
  );
}

/**
 * One driver's benchmark section as blocks, decided once and rendered twice: as Markdown (bench.md) and as
 * HTML (index.html). A cell is text, or text with a tone (code, muted, a reason) or a pass/fail pill.
 */
type Cell = string | number | { text: string; tone: 'code' | 'muted' | 'reason' } | { text: string; pill: 'pass' | 'fail' };
type Block = { heading: string } | { text: string; tone?: 'muted' | 'reason' } | { head: string[]; rows: Cell[][] };

const threadsLabel = (t: number) => `${t} ${t === 1 ? 'thread' : 'threads'}`;

function benchBlocks(bench: BenchSection): Block[] {
  const out: Block[] = [];
  if (bench.sign.length) {
    out.push(
      { heading: 'Signing, one session (sig/s)' },
      {
        head: [
          'Algorithm',
          'DNSSEC',
          'Mechanism',
          'bare pkcs11js loop',
          'harness',
          'harness ÷ bare',
          "this machine's own (node:crypto)",
          'p50 ms',
          'p99 ms',
          'signatures verified',
        ],
        rows: bench.sign.map((s) => [
          s.algorithm,
          s.dnssec,
          { text: s.mechanism, tone: 'code' },
          spreadOf(s.bareLoop),
          spreadOf(s.threads[0]!),
          s.vsBareLoop.toFixed(3),
          s.machine ? spreadOf(s.machine) : '—',
          ms(s.latency.p50),
          ms(s.latency.p99),
          s.verifiedSignatures,
        ]),
      },
    );
    const levels = bench.threadLevels;
    if (levels.length > 1) {
      out.push({ heading: 'Signer threads (aggregate sig/s, × one thread)' }, { text: KEYING });
      out.push({
        head: ['Algorithm', 'Keys', ...levels.map(threadsLabel)],
        rows: bench.sign.flatMap((s) =>
          threadRows(s).map((row) => [
            s.algorithm,
            row.keys,
            ...levels.map((t) => {
              const f = row.figures.find((x) => x.threads === t);
              return f ? `${rate(f.median)}${f.vsOneThread !== undefined ? ` (${f.vsOneThread.toFixed(2)}×)` : ''}` : '—';
            }),
          ]),
        ),
      });
    }
    const ev = bench.sign.filter((s) => s.eventLoop);
    if (ev.length) {
      out.push(
        { heading: 'Event-loop path (C_SignAsync)' },
        {
          head: ['Algorithm', 'in flight', 'sig/s', 'p50 ms', 'p99 ms'],
          rows: ev.map(({ algorithm, eventLoop: e }) => [algorithm, e!.inFlight, rate(e!.opsPerSec), ms(e!.latency.p50), ms(e!.latency.p99)]),
        },
      );
    }
  }
  for (const r of bench.rejected) out.push({ text: `No figure for ${r.algorithm}: ${r.reason}.`, tone: 'reason' });
  if (bench.keygen.length) {
    out.push(
      { heading: 'Key generation' },
      {
        head: ['Algorithm', 'mean', 'min', 'max', 'samples'],
        rows: bench.keygen.map((k) => [k.algorithm, `${ms(k.latency.mean)} ms`, `${ms(k.latency.min)} ms`, `${ms(k.latency.max)} ms`, k.latency.samples]),
      },
    );
  }
  if (bench.random) {
    const r = bench.random;
    out.push({ text: `Random numbers (C_GenerateRandom, ${r.bytes} bytes): mean ${ms(r.latency.mean)} ms, ${rate(r.opsPerSec)} calls/s.` });
  }
  if (bench.dnssec.length) {
    out.push(
      { heading: 'DNSSEC view' },
      { text: 'Best signer-thread figure per algorithm; re-sign time = RRsets ÷ sig/s (one RRSIG per RRset, one ZSK).' },
      {
        head: ['Algorithm', 'sig/s', 'threads', ...Object.keys(ZONE_SIZES).map((z) => `${z} RRsets`)],
        rows: bench.dnssec.map((v) => [
          `${v.algorithm} (${v.dnssec})`,
          rate(v.sigPerSec),
          v.threads,
          ...Object.keys(ZONE_SIZES).map((z) => humanDuration(v.resignSeconds[z]!)),
        ]),
      },
    );
  }
  const h = bench.hsmspeed;
  if (h) {
    out.push({ heading: 'Side by side with ods-hsmspeed' });
    if (h.skipped) out.push({ text: `Not run: ${h.skipped}`, tone: 'reason' });
    else {
      out.push(
        {
          text:
            'Same method on both sides: RSA-2048, SHA-1 + DigestInfo in software, CKM_RSA_PKCS, one session per thread, C_SignInit per signature, ' +
            `wall-clock rate; run alternately, best of ${h.repetitions}. Target ratio ≥ 0.95.`,
        },
        {
          head: ['Configuration', 'ods-hsmspeed sig/s', 'harness sig/s', 'ratio'],
          rows: h.rows.map((r) => [
            `${threadsLabel(r.threads)}, ${r.iterationsPerThread} signatures per thread`,
            r.ods ? r.ods.best.toFixed(2) : { text: `failed: ${r.odsError ?? ''}`, tone: 'reason' },
            r.harness ? r.harness.best.toFixed(2) : { text: `failed: ${r.harnessError ?? ''}`, tone: 'reason' },
            r.ratio !== undefined ? r.ratio.toFixed(3) : '—',
          ]),
        },
      );
    }
  }
  const doc = bench.documented;
  if (doc) {
    const notes = (r: (typeof doc.rows)[number]): Cell => ({
      text: [r.notes, r.suspect ? `suspect: ${r.suspect}` : ''].filter(Boolean).join('; '),
      tone: 'reason',
    });
    const measured = (r: (typeof doc.rows)[number]) => (r.measuredMs !== undefined ? `${ms(r.measuredMs)} ms` : '—');
    const verdict = (r: (typeof doc.rows)[number]): Cell => (r.verdict ? { text: r.verdict, pill: r.verdict === 'slower' ? 'fail' : 'pass' } : 'not measured');
    out.push(
      { heading: `Documented ${doc.family} figures` },
      {
        text: `${
          doc.applies
            ? `The token (${doc.token}) is the documented device: each figure gets a verdict.`
            : `Reference only: the token (${doc.token || 'unnamed'}) is not a CardContact ${doc.family}.`
        } Source: ${doc.source}.`,
      },
      {
        head: ['Operation', 'Documented', 'Measured', ...(doc.applies ? ['Verdict'] : []), 'Notes'],
        rows: doc.rows.map((r) => [r.operation, r.documented, measured(r), ...(doc.applies ? [verdict(r)] : []), notes(r)]),
      },
    );
  }
  return out;
}

/**
 * The real signers' zone-signing figures of one driver (its bench.json `zone-signing` records): one table, one row per
 * signer × algorithm × zone size, the token's raw rate and the ratio beside each (a dash where the bench did not run).
 */
function zoneSigningBlocks(driver: DriverReport): Block[] {
  const records = zoneSigningRecords(driver);
  if (!records.length) return [];
  return [
    { heading: 'Zone signing by real DNSSEC signers' },
    {
      text:
        "RRSIGs per second of wall clock (signer start and key generation included); the token's raw rate is the bench's " +
        'bare pkcs11js loop for the key type in the same run; ratio = RRSIGs/s ÷ raw rate.',
      tone: 'muted',
    },
    {
      head: ['Signer', 'Algorithm', 'records', 'RRSIGs', 'seconds', 'RRSIGs/s', "token's raw rate (sig/s)", 'ratio'],
      rows: records.map((r) => [
        r.signer ?? '',
        r.algorithm,
        r.records ?? '—',
        r.rrsigs ?? '—',
        r.wallSeconds ?? '—',
        rate(r.opsPerSec),
        r.tokenRawRate !== undefined ? rate(r.tokenRawRate) : '—',
        r.vsTokenRaw !== undefined ? r.vsTokenRaw.toFixed(3) : '—',
      ]),
    },
  ];
}

function kmipBlocks(kmip: KmipBenchSection): Block[] {
  const out: Block[] = [{ heading: 'KMIP Sign round trips' }];
  if (kmip.skipped) return [...out, { text: `Not run: ${kmip.skipped}`, tone: 'reason' }];
  out.push({
    head: ['Algorithm', 'mean ms', 'p99 ms', 'rme', 'round trips/s (one connection)'],
    rows: kmip.sign.map((s) => [s.algorithm, ms(s.latency.mean), ms(s.latency.p99), `±${s.latency.rme.toFixed(1)}%`, rate(s.opsPerSec)]),
  });
  if (kmip.connections?.length)
    out.push({
      head: ['Algorithm', 'connections', 'round trips', 'wall s', 'round trips/s'],
      rows: kmip.connections.map((p) => [p.algorithm, p.connections, p.completed, p.wallSeconds.toFixed(2), rate(p.opsPerSec)]),
    });
  return out;
}

const cellText = (c: Cell): string => (typeof c === 'object' ? ('tone' in c && c.tone === 'code' ? `\`${c.text}\`` : c.text) : String(c));

function toMarkdown(blocks: Block[]): string {
  return blocks
    .map((b) =>
      'heading' in b
        ? `### ${b.heading}\n`
        : 'text' in b
          ? `${b.text}\n`
          : table(
              b.head,
              b.rows.map((r) => r.map(cellText)),
            ),
    )
    .join('\n');
}

function cellHtml(c: Cell): string {
  if (typeof c !== 'object') return esc(c);
  if ('pill' in c) return pill(c.pill, c.text);
  return c.tone === 'code' ? `<code>${esc(c.text)}</code>` : `<span class="${c.tone}">${esc(c.text)}</span>`;
}

function toHtml(blocks: Block[]): string {
  return blocks
    .map((b) =>
      'heading' in b
        ? `<h4>${esc(b.heading)}</h4>`
        : 'text' in b
          ? `<p${b.tone ? ` class="${b.tone}"` : ''}>${esc(b.text)}</p>`
          : htmlTable(
              b.head,
              b.rows.map((r) => r.map(cellHtml)),
            ),
    )
    .join('\n');
}

export function renderBenchMarkdown(results: RunResults): string | undefined {
  const drivers = benchDrivers(results);
  if (drivers.length === 0) return undefined;
  const env = results.environment;
  const out: string[] = [
    '# Benchmarks\n',
    `Run ${results.startedAt} on ${env.hostname} (${env.platform}/${env.arch}, Node ${env.node}).\n`,
    `${METHOD} See docs/benchmarks.md. Charts: [throughput by signer threads](bench-throughput.svg), [measured vs documented](bench-documented.svg).\n`,
  ];
  for (const { driver, bench, kmip } of drivers) {
    out.push(`## ${driver.id} — ${driver.title}\n`);
    if (bench) {
      const e = bench.environment;
      out.push(
        `${bench.mode} pass, budget ${bench.budgetSeconds} s. Module ${e.module} (${e.library} ${e.libraryVersion}), ` +
          `token ${e.token} firmware ${e.firmwareVersion}; ` +
          `signer threads ${bench.threadLevels.join('/')} (driver's maximum concurrency ${e.maxConcurrency}), ${e.cpus} CPUs, ` +
          `load average ${e.loadAverage ?? 'unknown'}, tinybench ${e.tinybench}.\n`,
      );
      out.push(toMarkdown(benchBlocks(bench)));
    }
    if (kmip) out.push(toMarkdown(kmipBlocks(kmip)));
    const zones = zoneSigningBlocks(driver);
    if (zones.length) out.push(toMarkdown(zones));
  }
  return out.join('\n');
}

export function renderThroughputSvg(results: RunResults): string | undefined {
  const drivers = benchDrivers(results).filter((d) => d.bench?.sign.length);
  if (drivers.length === 0) return undefined;
  const levels = [...new Set(drivers.flatMap((d) => d.bench!.threadLevels))].sort((a, b) => a - b);
  const algs = [...new Set(drivers.flatMap((d) => d.bench!.sign.map((s) => s.algorithm)))];
  const panels: Panel[] = algs.map((a) => ({
    title: a,
    series: drivers
      .map((d) => {
        const threads = d.bench!.sign.find((s) => s.algorithm === a)?.threads ?? [];
        return { driver: d.driver.id, points: threads.map((t) => ({ x: t.threads, y: t.median })) };
      })
      .filter((s) => s.points.length),
  }));
  return throughputChart('Signing throughput (sig/s, median batch) by signer threads', levels, panels, 'signer threads');
}

export function renderDocumentedSvg(results: RunResults): string | undefined {
  const drivers = benchDrivers(results).filter((d) => d.bench?.documented);
  if (drivers.length === 0) return undefined;
  const table = loadDocumentedTable();
  const rows: RangeRow[] = table.rows
    .filter((r) => r.measure)
    .map((r) => ({
      label: r.operation,
      min: r.minMs,
      max: r.maxMs,
      suspect: !!r.suspect,
      measured: drivers.flatMap((d) => {
        const m = d.bench!.documented!.rows.find((x) => x.operation === r.operation)?.measuredMs;
        return m !== undefined ? [{ driver: d.driver.id, ms: m }] : [];
      }),
    }));
  return rangeChart(`Measured vs documented (${table.family}, go-keychain's published table)`, rows);
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

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

// ---------------------------------------------------------------------------------------------------------
// index.html parts.

function renderBench(data: unknown): string | undefined {
  const b = data as BenchSection;
  if (!isPlainObject(data) || !Array.isArray(b.sign) || !Array.isArray(b.threadLevels)) return undefined;
  return [
    `<p class="muted">${esc(b.mode)} pass, budget ${esc(b.budgetSeconds)} s per driver. ${esc(METHOD)}</p>`,
    toHtml(benchBlocks(b)),
    ...(b.environment ? ['<details><summary>Environment</summary>', renderValue(b.environment, 1), '</details>'] : []),
  ].join('\n');
}

function renderKmipBench(data: unknown): string | undefined {
  const k = data as KmipBenchSection;
  if (!k || !Array.isArray(k.sign)) return undefined;
  return toHtml(kmipBlocks(k).slice(1));
}

/**
 * The benchmark part of index.html across drivers: the charts, inline so the page stays one file, and per driver the
 * real signers' zone-signing table (the signers suite records them, so a driver's own bench section may not exist).
 */
function benchOverview(results: RunResults): string {
  const charts = [renderThroughputSvg(results), renderDocumentedSvg(results)].filter((c): c is string => c !== undefined);
  const zones = results.drivers.flatMap((d) => {
    const blocks = zoneSigningBlocks(d);
    return blocks.length ? [`<h3>${esc(d.id)}</h3>`, toHtml(blocks)] : [];
  });
  if (!charts.length && !zones.length) return '';
  return [
    '<p class="muted">Speed is reported, never asserted. Figures per driver are in each driver\'s section.</p>',
    ...charts.map((svg) => `<figure>${svg.replace(/^<\?xml[^>]*\?>\s*/, '')}</figure>`),
    ...zones,
  ].join('\n');
}

export const benchReport: SectionReport = {
  title: 'Benchmarks',
  html: renderBench,
  overview(results) {
    const html = benchOverview(results);
    return html ? { id: 'bench', title: 'Benchmarks', html } : undefined;
  },
  writers: benchWriters,
};

export const kmipBenchReport: SectionReport = { title: 'KMIP benchmarks', html: renderKmipBench };
