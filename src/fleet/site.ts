/**
 * The static site `hsm-harness merge` writes: one folder that works offline (file:// or GitHub Pages).
 *
 *   index.html          compatibility matrix, tested-HSMs table, benchmark history, the runs merged
 *   tested-hsms.md/.rst the tested-HSMs table for a manual to include
 *   matrix.json         the merged model, for other tools
 *   runs/<id>/          each run's own report (index.html) and its results.json: what every cell links to
 *
 * The pages use the per-run report's page shell (src/reports/page.ts: no script, inline CSS and SVG only, a
 * Content-Security-Policy that forbids every fetch); every piece of text from a run goes through esc().
 */
import { renderHtml } from '../reports/html.js';
import { esc, page } from '../reports/page.js';
import type { SectionReport } from '../reports/sections.js';
import type { LoadedRun } from './load.js';
import { buildMatrix, renderTestedMarkdown, renderTestedRst, type BenchPoint, type BenchSeries, type FleetMatrix, type MatrixCell } from './matrix.js';
import { DEFAULT_PERF_THRESHOLD_PERCENT, describeJudgement, describeModel } from './noise.js';

/** Marks a folder as a site this command wrote, so that a re-merge may replace it (and nothing else). */
export const SITE_MARKER = '.hsm-harness-site';

/** Run ids are made by load.ts from a date and a hex digest; this keeps a path from ever leaving runs/. */
const runPath = (id: string) => `runs/${id.replace(/[^A-Za-z0-9_-]/g, '_')}/index.html`;
const anchor = (s: string) => `driver-${s.replace(/[^A-Za-z0-9_-]/g, '_')}`;
const runLink = (runId: string, driver: string) => `${runPath(runId)}#${anchor(driver)}`;
const day = (iso: string) => iso.slice(0, 10);

function cell(c: MatrixCell | undefined): string {
  if (!c) return '<td class="cell na" data-verdict="">–</td>';
  const title = `${c.driver}, run ${c.runId}, ${c.basis}${c.otherRuns ? `; ${c.otherRuns} other run(s)` : ''}${c.reasons.length ? `: ${c.reasons.join('; ')}` : ''}`;
  return (
    `<td class="cell" data-verdict="${esc(c.label)}" data-run="${esc(c.runId)}" data-driver="${esc(c.driver)}" title="${esc(title)}">` +
    `<a href="${esc(runLink(c.runId, c.driver))}"><span class="v-${esc(c.label.replace(/\W/g, ''))}">${esc(c.label)}</span>` +
    `<span class="date">${esc(day(c.date))}</span></a></td>`
  );
}

function matrixTable(m: FleetMatrix): string {
  const head = ['HSM', 'Firmware', 'Module', 'Interface', ...m.signers, 'Drivers', 'Last run'];
  const rows = m.rows.map(
    (r) =>
      `<tr data-key="${esc(r.key)}"><td class="product">${esc(r.product)}</td><td class="firmware">${esc(r.firmware || '–')}</td>` +
      `<td class="module">${esc(r.module || '–')}</td><td class="interface">${esc(r.interface)}</td>${m.signers.map((s) => cell(r.cells[s])).join('')}` +
      `<td class="drivers">${esc(r.drivers.join(', '))}</td>` +
      `<td class="last"><a href="${esc(runLink(r.lastRun.runId, r.lastRun.driver))}">${esc(day(r.lastRun.date))}</a> ` +
      `<span class="muted">(${esc(r.runs)} run${r.runs === 1 ? '' : 's'})</span></td></tr>`,
  );
  return (
    `<div class="scroll"><table class="matrix"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.join('\n')}</tbody></table></div>`
  );
}

/** A small inline line chart of one series; no axes, the table beside it has the numbers. */
function sparkline(s: BenchSeries): string {
  const w = 160,
    h = 28,
    vals = s.points.map((p) => p.opsPerSec);
  if (vals.length < 2) return '';
  const max = Math.max(...vals),
    min = Math.min(...vals),
    span = max - min || 1;
  const pts = vals.map((v, i) => `${(i * (w - 4)) / (vals.length - 1) + 2},${(h - 2 - ((v - min) / span) * (h - 4)).toFixed(1)}`).join(' ');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="trend">` +
    `<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="${pts}"/></svg>`
  );
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v.toPrecision(3));

/** The trend mark of a point against the one before it: only moves beyond noise, or a move too big to ignore without evidence. */
const TREND_MARKS = {
  'slower beyond noise': ['▼', 't-slower'],
  'faster beyond noise': ['▲', 't-faster'],
  'not enough evidence': ['?', 't-unknown'],
} as const;

function trendMark(p: BenchPoint): string {
  const v = p.trend?.verdict;
  if (!v || v === 'within noise') return '';
  const [mark, cls] = TREND_MARKS[v];
  return ` <span class="trend ${cls}" data-trend="${esc(v)}" title="${esc(`${v}: ${describeJudgement(p.trend!)}`)}">${mark}</span>`;
}

function benchHistory(m: FleetMatrix): string {
  const products = Object.keys(m.bench);
  if (products.length === 0) return '<p class="muted">No run merged here has benchmark figures.</p>';
  return products
    .map((product) => {
      const rows = m.bench[product]!.map(
        (s) =>
          `<tr><td class="series">${esc(s.name)}</td><td>${sparkline(s)}</td><td class="points">` +
          s.points
            .map(
              (p) =>
                `<a href="${esc(runLink(p.runId, p.driver))}" title="${esc(p.date)}">${esc(fmt(p.opsPerSec))}` +
                `${p.rme !== undefined ? ` ±${esc(p.rme.toFixed(1))}%` : ''}` +
                ` <span class="date">${esc(day(p.date))}</span></a>${trendMark(p)}`,
            )
            .join(' · ') +
          '</td></tr>',
      );
      return (
        `<section class="bench" data-product="${esc(product)}"><h3>${esc(product)}</h3>` +
        `<table class="bench-history"><thead><tr><th>Series (operations per second)</th><th>Trend</th><th>Runs, oldest first</th></tr></thead>` +
        `<tbody>${rows.join('')}</tbody></table></section>`
      );
    })
    .join('\n');
}

function runsTable(m: FleetMatrix): string {
  const rows = m.runs.map(
    (r) =>
      `<tr data-run="${esc(r.id)}"><td><a href="${esc(runPath(r.id))}">${esc(r.date)}</a></td><td>${esc(r.host)}</td>` +
      `<td>${esc(r.labels.join(', ') || '–')}</td><td>${esc(r.version)}${r.commit ? ` <code>${esc(r.commit.slice(0, 12))}</code>` : ''}</td>` +
      `<td>${esc(r.drivers.join(', '))}</td><td>${r.runUrl && /^https:\/\//.test(r.runUrl) ? `<a href="${esc(r.runUrl)}">CI run</a>` : '–'}</td></tr>`,
  );
  return (
    `<table class="runs"><thead><tr><th>Finished</th><th>Machine</th><th>Runner labels</th><th>Harness</th><th>Drivers</th><th>Log</th></tr></thead>` +
    `<tbody>${rows.join('\n')}</tbody></table>`
  );
}

export function renderSiteIndex(m: FleetMatrix, generatedAt: string): string {
  return page(
    'hsm-harness: tested HSMs',
    `
<header><h1>Tested HSMs</h1>
<p class="muted">Merged by hsm-harness from ${esc(m.runs.length)} run(s) on ${esc(generatedAt)}. Every cell links to the run that proved it.
Also as <a href="tested-hsms.md">Markdown</a>, <a href="tested-hsms.rst">reStructuredText</a> and <a href="matrix.json">JSON</a>.</p></header>
<main>
<h2 id="matrix">Compatibility: token × firmware × module × DNSSEC signer</h2>
${matrixTable(m)}
<h2 id="bench">Benchmark history</h2>
<p class="muted">Each point against the one before it: <span class="t-slower">▼</span> slower beyond noise,
<span class="t-faster">▲</span> faster beyond noise, <span class="t-unknown">?</span> moved by ${DEFAULT_PERF_THRESHOLD_PERCENT} % or more
but too few batches to tell; no mark: within noise. ${esc(describeModel(DEFAULT_PERF_THRESHOLD_PERCENT))}.</p>
${benchHistory(m)}
<h2 id="runs">Runs merged</h2>
${runsTable(m)}
</main>`,
  );
}

/**
 * Every file of the site, rendered in memory: the caller writes them only when all rendered. `sections` says
 * how the suites show their sections in each run's page (src/registry.ts loadSectionReports).
 */
export function renderSite(
  runs: LoadedRun[],
  generatedAt = new Date().toISOString(),
  sections: ReadonlyMap<string, SectionReport> = new Map(),
): Map<string, string> {
  const m = buildMatrix(runs);
  const files = new Map<string, string>();
  files.set('index.html', renderSiteIndex(m, generatedAt));
  files.set('tested-hsms.md', renderTestedMarkdown(m));
  files.set('tested-hsms.rst', renderTestedRst(m));
  files.set('matrix.json', `${JSON.stringify(m, null, 2)}\n`);
  for (const r of runs) {
    files.set(runPath(r.id), renderHtml(r.results, sections));
    files.set(runPath(r.id).replace(/index\.html$/, 'results.json'), `${JSON.stringify(r.results, null, 2)}\n`);
  }
  files.set(SITE_MARKER, 'Written by hsm-harness merge; the next merge with the same --out replaces this folder.\n');
  return files;
}
