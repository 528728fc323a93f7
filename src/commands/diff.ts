import type { Command } from './types.js';
import { parse } from './args.js';
import { UsageError } from '../errors.js';
import { loadRun, resultsFiles, shortPath, type LoadedRun } from '../fleet/load.js';
import { diffRuns, FAIL_ON, renderDiffJson, renderDiffMarkdown, renderDiffText, type FailOn } from '../fleet/diff.js';
import { DEFAULT_PERF_THRESHOLD_PERCENT } from '../fleet/noise.js';

const FORMATS = { text: renderDiffText, md: renderDiffMarkdown, json: renderDiffJson } as const;

/** One run per argument: a results.json, or a directory holding exactly one. */
async function one(arg: string): Promise<LoadedRun> {
  const files = resultsFiles(arg);
  if (files.length > 1) throw new UsageError(`diff: ${arg} holds ${files.length} results.json files; name the one to compare`);
  const run = await loadRun(files[0]!);
  run.file = shortPath(run.file);
  return run;
}

export const diffCommand: Command = {
  name: 'diff',
  summary:
    'what changed between two runs: case status, golden return codes, capabilities, mechanisms, signer verdicts (conformance), ' +
    'throughput beyond noise (performance); exit 1 on a regression of the kind --fail-on selects',
  usage:
    'hsm-harness diff <old results.json|dir> <new results.json|dir> [--format text|md|json] [--fail-on conformance|performance|all] ' +
    `[--perf-threshold PCT (default ${DEFAULT_PERF_THRESHOLD_PERCENT})]`,
  async run(argv) {
    const { values, positionals } = parse(
      'diff',
      argv,
      {
        format: { type: 'string', default: 'text' },
        'fail-on': { type: 'string', default: 'conformance' },
        'perf-threshold': { type: 'string', default: String(DEFAULT_PERF_THRESHOLD_PERCENT) },
      },
      true,
    );
    const format = values.format as keyof typeof FORMATS;
    if (!(format in FORMATS)) throw new UsageError(`diff: --format must be text, md or json, got "${values.format}"`);
    const failOn = values['fail-on'] as FailOn;
    if (!FAIL_ON.includes(failOn)) throw new UsageError(`diff: --fail-on must be conformance, performance or all, got "${values['fail-on']}"`);
    const thresholdText = values['perf-threshold']!;
    const threshold = Number(thresholdText);
    if (!/^\d+(\.\d+)?$/.test(thresholdText) || !(threshold < 100)) {
      throw new UsageError(`diff: --perf-threshold must be a percentage from 0 to below 100 (e.g. 10), got "${thresholdText}"`);
    }
    if (positionals.length !== 2) throw new UsageError(`diff: give exactly two runs, old then new (got ${positionals.length}); see hsm-harness diff --help`);
    const d = diffRuns(await one(positionals[0]!), await one(positionals[1]!), { perfThresholdPercent: threshold, failOn });
    process.stdout.write(FORMATS[format](d));
    return d.regressions > 0 ? 1 : 0;
  },
};
