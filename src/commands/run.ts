import type { Command } from './types.js';
import { parse } from './args.js';
import { runMatrix } from '../runner/run.js';
import { makeProgress } from '../runner/progress.js';
import { writeReports } from '../reports/write.js';
import { runPassed, securityFindings, type RunResults } from '../results.js';
import { loadSuites } from '../registry.js';
import { UsageError } from '../errors.js';
import { updateGoldenCodes } from '../expectations.js';
import { ReportDir } from '../reports/outdir.js';
import { cleanText, redactFreeText } from '../secrets.js';
import { unique } from './args.js';
import { CaseSelection } from '../runner/cases.js';

/**
 * Naming the signers suite asks for all of it: every signer and algorithm, and zone-signing speed for zones of
 * 1,000 and 10,000 records (HSM_SIGNER_ZONE_SIZES, e.g. 1000,10000,100000, changes the sizes; 0 turns it off).
 */
export function signerOptions(all: boolean, defaultSizes: number[] = all ? [1000, 10000] : []): { all: boolean; sizes: number[] } {
  const env = process.env.HSM_SIGNER_ZONE_SIZES;
  const sizes =
    env !== undefined
      ? env
          .split(',')
          .map(Number)
          .filter((n) => Number.isInteger(n) && n > 0)
      : defaultSizes;
  if (env?.split(',').some((x) => !/^\s*\d+\s*$/.test(x)))
    throw new UsageError(`HSM_SIGNER_ZONE_SIZES must be record counts separated by commas (e.g. 1000,10000), not "${env}"`);
  return { all, sizes };
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run the conformance suites on every driver (or the ones named) and write reports',
  usage: 'hsm-harness run [--driver ID ...] [--suite NAME ...] [--case PATTERN ...] [--out DIR] [--json] [--quiet] [--update-golden]',
  async run(argv) {
    const { values } = parse('run', argv, {
      driver: { type: 'string', multiple: true },
      suite: { type: 'string', multiple: true },
      case: { type: 'string', multiple: true },
      out: { type: 'string', default: 'reports' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      'update-golden': { type: 'boolean', default: false },
    });
    const suites = await loadSuites();
    for (const s of values.suite ?? []) {
      if (!suites.some((x) => x.name === s)) {
        throw new UsageError(`unknown suite "${s}"; known suites: ${suites.map((x) => x.name).join(', ')}`);
      }
    }
    // An unknown pattern stops the run before anything starts (the worker builds the same selection).
    if (values.case) new CaseSelection(suites, values.case);
    // Checked and locked before anything runs: a bad --out or a second run on it is found in a second.
    const out = await ReportDir.open(values.out!);
    let results: RunResults;
    let written: string[];
    try {
      const progress = makeProgress(process.stderr, values.quiet || values.json);
      // A driver or suite named twice runs once.
      results = redactFreeText(
        await runMatrix({
          driverIds: unique(values.driver),
          suites: unique(values.suite),
          cases: unique(values.case),
          progress,
          // Naming the signers suite asks for all of it, the slow signers (daemons) included.
          options: { updateGolden: values['update-golden'], signers: signerOptions(values.suite?.includes('signers') === true) },
        }),
      );
      written = await writeReports(results, out);
    } finally {
      await out.release();
    }
    // Asking for drivers by name and getting none of them must not look like a green run.
    const nothingRan = (values.driver?.length ?? 0) > 0 && results.drivers.every((d) => !d.available);
    if (nothingRan) {
      process.stderr.write(
        `hsm-harness: none of the requested drivers could run, so nothing was tested: ${results.drivers.map((d) => `${d.id} (${d.availabilityReason})`).join('; ')}\n`,
      );
    }
    const ok = runPassed(results) && !nothingRan;
    if (values['update-golden']) {
      // Record this run's return codes as each driver's golden values, for review in version control.
      for (const d of results.drivers) {
        if (d.status === 'ran' && Object.keys(d.goldenCodes).length) {
          process.stderr.write(`golden return codes written to ${await updateGoldenCodes(d.id, d.goldenCodes)}\n`);
        }
      }
    }
    if (values.json) {
      process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    } else {
      const s = results.summary;
      for (const f of securityFindings(results.drivers)) process.stdout.write(`SECURITY ${f.driver}: ${f.text}\n`);
      process.stdout.write(
        `${s.total} cases: ${s.pass} passed, ${s.fail} failed, ${s.skip} skipped, ${s.unsupported} unsupported, ${s.crash} crashed, ${s.timeout} timed out\n`,
      );
      for (const d of results.drivers) {
        process.stdout.write(`  ${d.id.padEnd(18)} ${d.available ? d.status : `unavailable: ${d.availabilityReason}`}\n`);
      }
      process.stdout.write(`reports: ${cleanText(written.join(', '), true)}\n`);
    }
    return ok ? 0 : 1;
  },
};
