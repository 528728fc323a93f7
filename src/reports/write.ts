/**
 * Writes the run's reports under the output directory, each atomically. Other report writers (bench,
 * HTML) register here so that `run` writes everything it has data for.
 */
import { join } from 'node:path';
import type { RunResults } from '../results.js';
import { writeFileAtomic } from '../fsutil.js';
import { renderJUnit } from './junit.js';
import { renderCapabilities } from './capabilities.js';
import { renderHtml } from './html.js';
import { benchWriters } from './bench.js';

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

/** Render everything first, then write: a rendering error leaves the previous reports untouched. */
export async function writeReports(results: RunResults, outDir: string, writers: ReportWriter[] = reportWriters): Promise<string[]> {
  const rendered: [string, string][] = [];
  for (const w of writers) {
    const text = w.render(results);
    if (text !== undefined) rendered.push([join(outDir, w.file), text]);
  }
  for (const [path, text] of rendered) await writeFileAtomic(path, text);
  return rendered.map(([p]) => p);
}
