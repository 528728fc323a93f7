/** `hsm-harness bench`: lives beside the benchmarks; src/commands/index.ts loads it by path when it runs. */
import type { Command } from '../src/commands/types.js';
import { caseFailsRun, type RunResults } from '../src/results.js';
import { parse, unique } from '../src/commands/args.js';
import { runMatrix } from '../src/runner/run.js';
import { makeProgress } from '../src/runner/progress.js';
import { UsageError } from '../src/errors.js';
import { ReportDir } from '../src/reports/outdir.js';
import { redactFreeText } from '../src/secrets.js';
import { writeReports } from '../src/reports/write.js';
import { signerOptions } from '../src/commands/run.js';
import { benchWritersWith, renderBenchJson, signSummary, type MicroFigure } from './report.js';
import type { BenchOptions } from './types.js';

export const benchCommand: Command = {
  name: 'bench',
  summary:
    'measure signing throughput (beside a bare pkcs11js loop), signer-thread scaling and key generation; ' +
    'compare with ods-hsmspeed and the documented table',
  usage: 'hsm-harness bench [--driver ID ...] [--quick] [--time SECONDS] [--compare ods-hsmspeed] [--out DIR] [--json] [--quiet]',
  async run(argv) {
    const { values } = parse('bench', argv, {
      driver: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      time: { type: 'string' },
      compare: { type: 'string' },
      out: { type: 'string', default: 'reports' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    });
    let timeSeconds: number | undefined;
    if (values.time !== undefined) {
      timeSeconds = Number(values.time);
      if (!/^\d+(\.\d+)?$/.test(values.time) || !(timeSeconds >= 1 && timeSeconds <= 86_400)) {
        throw new UsageError(`bench: --time must be a number of seconds between 1 and 86400, got "${values.time}"`);
      }
    }
    if (values.compare !== undefined && values.compare !== 'ods-hsmspeed') {
      throw new UsageError(`bench: --compare only knows "ods-hsmspeed", got "${values.compare}"`);
    }
    const compareOnly = values.compare === 'ods-hsmspeed';
    const bench: Partial<BenchOptions> = { quick: values.quick, compareOnly };
    if (timeSeconds !== undefined) bench.timeSeconds = timeSeconds;
    // The fast signers sign generated zones after the token's own figures, which give their ratio (docs/benchmarks.md).
    const suites = compareOnly ? ['bench'] : ['bench', 'bench-kmip', 'signers'];
    const signers = signerOptions(false, values.quick ? [1000, 10000] : [1000, 10000, 100000]);

    const out = await ReportDir.open(values.out!);
    let results: RunResults;
    let micro: MicroFigure[];
    let written: string[];
    try {
      const progress = makeProgress(process.stderr, values.quiet || values.json);
      results = redactFreeText(await runMatrix({ driverIds: unique(values.driver), suites, progress, options: { bench, signers } }));
      micro = compareOnly ? [] : await microBenchmarks(values.quick);
      written = await writeReports(results, out, benchWritersWith(micro));
    } finally {
      await out.release();
    }

    if (values.json) {
      process.stdout.write(renderBenchJson(results) ?? '{}\n');
    } else {
      for (const d of results.drivers) {
        for (const c of d.cases.filter((x) => x.status === 'fail' || x.status === 'crash' || x.status === 'timeout')) {
          process.stdout.write(`${d.id}: ${c.suite}/${c.case} ${c.status}: ${c.reason ?? ''}\n`);
        }
        const section = d.sections.bench;
        const kmip = d.sections['bench-kmip'];
        for (const s of kmip?.sign ?? [])
          process.stdout.write(`${d.id}: KMIP sign ${s.algorithm}: ${s.latency.mean.toFixed(2)} ms mean, ${s.opsPerSec.toFixed(1)} round trips/s\n`);
        if (kmip && !section) continue;
        if (!d.available) {
          process.stdout.write(`${d.id}: unavailable: ${d.availabilityReason}\n`);
          continue;
        }
        if (!section) {
          process.stdout.write(`${d.id}: ${d.status}${d.statusReason ? `: ${d.statusReason}` : ''}\n`);
          continue;
        }
        for (const s of section.sign) process.stdout.write(`${d.id}: ${signSummary(s)}\n`);
        for (const r of section.rejected) process.stdout.write(`${d.id}: sign ${r.algorithm}: no figure: ${r.reason}\n`);
        if (section.hsmspeed?.skipped) process.stdout.write(`${d.id}: ods-hsmspeed: skipped: ${section.hsmspeed.skipped}\n`);
        for (const r of section.hsmspeed?.rows ?? []) {
          const label = `${r.threads} ${r.threads === 1 ? 'thread' : 'threads'}, ${r.iterationsPerThread} signatures per thread`;
          const ods = r.ods ? `${r.ods.best.toFixed(2)} sig/s` : `failed (${r.odsError})`;
          const own = r.harness ? `${r.harness.best.toFixed(2)} sig/s` : `failed (${r.harnessError})`;
          process.stdout.write(`${d.id}: ${label}: ods-hsmspeed ${ods}, harness ${own}${r.ratio !== undefined ? `, ratio ${r.ratio.toFixed(3)}` : ''}\n`);
        }
      }
      for (const m of micro) process.stdout.write(`${m.name}: ${m.value} ${m.unit}\n`);
      process.stdout.write(`reports: ${written.join(', ') || 'none (no driver produced benchmark figures)'}\n`);
    }
    const bad = results.drivers.some(
      (d) =>
        d.status === 'crash' ||
        d.status === 'timeout' ||
        d.status === 'error' ||
        // The status model's rule: an expected fail (a signer's known failure on this token) does not fail the run.
        d.cases.some(caseFailsRun),
    );
    return bad ? 1 : 0;
  },
};

/** The driver-less figures: KMIP codec throughput, and (full runs only) one DKEK share-file key derivation. */
async function microBenchmarks(quick: boolean): Promise<MicroFigure[]> {
  // Loaded here, not at start-up: every other command would pay for them.
  const { benchKmipCodec } = await import('./kmip-codec.js');
  const { benchDkekKdf } = await import('./dkek-kdf.js');
  const out: MicroFigure[] = [];
  const codec = await benchKmipCodec({ timeMs: quick ? 300 : 1000 });
  const extra = `${codec.messageBytes}-byte batched Sign request`;
  out.push({ name: 'kmip-codec encode', value: codec.encodeMBps, unit: 'MB/s', extra, biggerIsBetter: true });
  out.push({ name: 'kmip-codec decode', value: codec.decodeMBps, unit: 'MB/s', extra, biggerIsBetter: true });
  // One DKEK share-file key derivation takes seconds by design (10 million MD5 iterations).
  if (!quick) {
    const kdf = await benchDkekKdf();
    out.push({
      name: 'dkek-kdf share key derivation',
      value: kdf.seconds,
      unit: 's',
      biggerIsBetter: false,
      ...(kdf.naiveSecondsEstimate !== undefined ? { extra: `naive createHash loop: about ${kdf.naiveSecondsEstimate.toFixed(1)} s` } : {}),
    });
  }
  return out;
}
