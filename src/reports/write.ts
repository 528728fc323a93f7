/**
 * Writes the run's reports into the output directory as one atomic set (src/reports/outdir.ts). Suites add
 * their own files through Suite.report (src/reports/sections.ts), so that `run` writes everything it has data for.
 */
import type { RunResults } from '../results.js';
import { redactFreeText } from '../secrets.js';
import { renderJUnit } from './junit.js';
import { renderCapabilities } from './capabilities.js';
import { renderHtml } from './html.js';
import { ReportDir } from './outdir.js';
import type { ReportWriter } from './sections.js';
import { loadSectionReports } from '../registry.js';

export type { ReportWriter } from './sections.js';

/** Every report `run` writes: the core formats, then the files of the suites that describe their sections. */
export async function reportWriters(): Promise<ReportWriter[]> {
  const sections = await loadSectionReports();
  return [
    { file: 'results.json', render: (r) => `${JSON.stringify(r, null, 2)}\n` },
    { file: 'junit.xml', render: renderJUnit },
    { file: 'capabilities.md', render: renderCapabilities },
    { file: 'index.html', render: (r) => renderHtml(r, sections) },
    ...[...sections.values()].flatMap((s) => s.writers ?? []),
  ];
}

/**
 * Render everything first, then switch the whole set in. A rendering or write error leaves the previous
 * reports untouched. Free text in the results is cleaned (secrets masked, control characters escaped) once
 * more here, with every secret the run registered; structural values are never touched.
 * `out` is a ReportDir the caller opened (and locked) before the run, or a path to open now. The writers'
 * file names are the ones this command owns: an earlier one of them that is not written now is dropped
 * (`run` owns every report, `bench` only the bench files). With nothing to write, the directory is left alone.
 */
export async function writeReports(results: RunResults, out: ReportDir | string, writers?: ReportWriter[]): Promise<string[]> {
  writers ??= await reportWriters();
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
