import type { Command } from './types.js';
import { parse } from './args.js';
import { UsageError } from '../errors.js';
import { loadRun, resultsFiles, shortPath, type LoadedRun } from '../fleet/load.js';
import { diffRuns, renderDiffJson, renderDiffMarkdown, renderDiffText } from '../fleet/diff.js';

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
  summary: 'what changed between two runs: case status, golden return codes, capabilities, mechanisms, signer verdicts, throughput (exit 1 on a regression)',
  usage: 'hsm-harness diff <old results.json|dir> <new results.json|dir> [--format text|md|json]',
  async run(argv) {
    const { values, positionals } = parse('diff', argv, { format: { type: 'string', default: 'text' } }, true);
    const format = values.format as keyof typeof FORMATS;
    if (!(format in FORMATS)) throw new UsageError(`diff: --format must be text, md or json, got "${values.format}"`);
    if (positionals.length !== 2) throw new UsageError(`diff: give exactly two runs, old then new (got ${positionals.length}); see hsm-harness diff --help`);
    const d = diffRuns(await one(positionals[0]!), await one(positionals[1]!));
    process.stdout.write(FORMATS[format](d));
    return d.regressions > 0 ? 1 : 0;
  },
};
