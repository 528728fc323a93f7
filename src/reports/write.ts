/**
 * Writes the run's reports into the output directory as one atomic set (src/reports/outdir.ts). Other
 * report writers (bench, HTML) register here so that `run` writes everything it has data for.
 */
import type { RunResults } from '../results.js';
import { redactFreeText } from '../secrets.js';
import { renderJUnit } from './junit.js';
import { renderCapabilities } from './capabilities.js';
import { renderHtml } from './html.js';
import { benchWriters } from './bench.js';
import { ReportDir } from './outdir.js';

export interface ReportWriter {
  file: string;
  render(results: RunResults): string | undefined;
}

export const reportWriters: ReportWriter[] = [
  { file: 'results.json', render: (r) => JSON.stringify(r, null, 2) + '\n' },
  { file: 'junit.xml', render: renderJUnit },
  { file: 'capabilities.md', render: renderCapabilities },
  { file: 'index.html', render: renderHtml },
  ...benchWriters,
];

/**
 * Render everything first, then switch the whole set in. A rendering or write error leaves the previous
 * reports untouched. Free text in the results is cleaned (secrets masked, control characters escaped) once
 * more here, with every secret the run registered; structural values are never touched.
 * `out` is a ReportDir the caller opened (and locked) before the run, or a path to open now. The writers'
 * file names are the ones this command owns: an earlier one of them that is not written now is dropped
 * (`run` owns every report, `bench` only the bench files). With nothing to write, the directory is left alone.
 */
export async function writeReports(results: RunResults, out: ReportDir | string, writers: ReportWriter[] = reportWriters): Promise<string[]> {
  const safe = redactFreeText(results);
  const rendered: [string, string][] = [];
  for (const w of writers) {
    const text = w.render(safe);
    if (text !== undefined) rendered.push([w.file, text]);
  }
  if (rendered.length === 0) return [];
  const own = new Set(writers.map((w) => w.file));
  if (typeof out !== 'string') return out.publish(rendered, own);
  const dir = await ReportDir.open(out);
  try {
    return await dir.publish(rendered, own);
  } finally {
    await dir.release();
  }
}
