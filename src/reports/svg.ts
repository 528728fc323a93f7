/**
 * Two small hand-written SVG charts for the benchmark report: throughput against signer threads
 * (one panel per algorithm, one line per driver) and measured time per operation against the documented
 * range (log scale, one marker per driver). Plain SVG 1.1, no scripts, readable without a browser.
 */
import { esc } from './page.js';

export interface Series {
  driver: string;
  points: { x: number; y: number }[];
}

export interface Panel {
  title: string;
  series: Series[];
}

export interface RangeRow {
  label: string;
  /** Documented range in ms (min may be 0 for "< max" rows). */
  min: number;
  max: number;
  suspect?: boolean;
  measured: { driver: string; ms: number }[];
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const FONT = 'font-family="sans-serif" font-size="11"';
const TITLE_FONT = 'font-family="sans-serif" font-size="14" font-weight="bold"';

function n(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

/** A round upper bound for an axis: 1, 2 or 5 × 10^k at or above v. */
export function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function colourMap(drivers: string[]): Map<string, string> {
  return new Map(drivers.map((d, i) => [d, COLOURS[i % COLOURS.length]!]));
}

function legend(drivers: string[], colours: Map<string, string>, x: number, y: number): string {
  return `<g class="legend">${drivers.map((d, i) => `<g class="legend-item" data-driver="${esc(d)}"><rect x="${x}" y="${y + i * 16}" width="10" height="10" fill="${colours.get(d)}"/><text x="${x + 14}" y="${y + i * 16 + 9}" ${FONT}>${esc(d)}</text></g>`).join('')}</g>`;
}

/** Throughput (y) against concurrency levels (x, evenly spaced), one panel per algorithm. */
export function throughputChart(title: string, levels: number[], panels: Panel[], xLabel = 'operations in flight'): string {
  const drivers = [...new Set(panels.flatMap((p) => p.series.map((s) => s.driver)))];
  const colours = colourMap(drivers);
  const pw = 260,
    ph = 190,
    cols = Math.min(3, Math.max(1, panels.length));
  const rows = Math.max(1, Math.ceil(panels.length / cols));
  const left = 56,
    top = 40,
    gap = 30,
    legendW = 150;
  const width = left + cols * (pw + gap) + legendW;
  const height = top + rows * (ph + gap + 30) + 10;
  const parts: string[] = [];
  panels.forEach((panel, i) => {
    const ox = left + (i % cols) * (pw + gap);
    const oy = top + Math.floor(i / cols) * (ph + gap + 30);
    const ymax = niceCeil(Math.max(1, ...panel.series.flatMap((s) => s.points.map((p) => p.y))));
    const xAt = (level: number) => ox + (levels.length > 1 ? (levels.indexOf(level) / (levels.length - 1)) * pw : pw / 2);
    const yAt = (v: number) => oy + ph - (v / ymax) * ph;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * ymax);
    parts.push(`<g class="panel" data-title="${esc(panel.title)}">`);
    parts.push(`<text x="${ox + pw / 2}" y="${oy - 8}" text-anchor="middle" ${FONT} font-weight="bold">${esc(panel.title)}</text>`);
    parts.push(
      `<g class="axis x-axis"><line x1="${ox}" y1="${oy + ph}" x2="${ox + pw}" y2="${oy + ph}" stroke="#333"/>${levels.map((l) => `<text x="${n(xAt(l))}" y="${oy + ph + 14}" text-anchor="middle" ${FONT}>${l}</text>`).join('')}<text x="${ox + pw / 2}" y="${oy + ph + 28}" text-anchor="middle" ${FONT}>${esc(xLabel)}</text></g>`,
    );
    parts.push(
      `<g class="axis y-axis"><line x1="${ox}" y1="${oy}" x2="${ox}" y2="${oy + ph}" stroke="#333"/>${ticks.map((t) => `<line x1="${ox - 3}" y1="${n(yAt(t))}" x2="${ox + pw}" y2="${n(yAt(t))}" stroke="#ddd"/><text x="${ox - 5}" y="${n(yAt(t) + 4)}" text-anchor="end" ${FONT}>${Math.round(t)}</text>`).join('')}</g>`,
    );
    for (const s of panel.series) {
      const pts = s.points
        .filter((p) => levels.includes(p.x))
        .map((p) => `${n(xAt(p.x))},${n(yAt(p.y))}`)
        .join(' ');
      const c = colours.get(s.driver);
      parts.push(
        `<g class="series" data-driver="${esc(s.driver)}"><polyline points="${pts}" fill="none" stroke="${c}" stroke-width="2"/>${s.points.map((p) => `<circle cx="${n(xAt(p.x))}" cy="${n(yAt(p.y))}" r="3" fill="${c}"><title>${esc(`${s.driver}: ${Math.round(p.y)} ops/s at ${p.x} ${xLabel}`)}</title></circle>`).join('')}</g>`,
      );
    }
    parts.push('</g>');
  });
  return svgDoc(
    width,
    height,
    title,
    `<text x="${left}" y="18" ${TITLE_FONT}>${esc(title)}</text>${parts.join('\n')}${legend(drivers, colours, width - legendW + 10, top)}`,
  );
}

/** Measured ms per operation against documented ranges, log-scaled x axis. */
export function rangeChart(title: string, rows: RangeRow[]): string {
  const drivers = [...new Set(rows.flatMap((r) => r.measured.map((m) => m.driver)))];
  const colours = colourMap(drivers);
  const left = 170,
    top = 40,
    plotW = 480,
    rowH = 26,
    legendW = 150;
  const values = rows.flatMap((r) => [r.max, ...(r.min > 0 ? [r.min] : []), ...r.measured.map((m) => m.ms)]).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const xAt = (ms: number) => left + ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  const height = top + rows.length * rowH + 40;
  const width = left + plotW + 20 + legendW;
  const decades: number[] = [];
  for (let d = lo; d <= hi * 1.0001; d *= 10) decades.push(d);
  const label = (ms: number) => (ms >= 1000 ? `${ms / 1000} s` : ms >= 1 ? `${ms} ms` : `${ms * 1000} µs`);
  const parts: string[] = [];
  const axisY = top + rows.length * rowH;
  parts.push(
    `<g class="axis x-axis"><line x1="${left}" y1="${axisY}" x2="${left + plotW}" y2="${axisY}" stroke="#333"/>${decades.map((d) => `<line x1="${n(xAt(d))}" y1="${top}" x2="${n(xAt(d))}" y2="${axisY}" stroke="#ddd"/><text x="${n(xAt(d))}" y="${axisY + 14}" text-anchor="middle" ${FONT}>${label(Number(d.toPrecision(3)))}</text>`).join('')}<text x="${left + plotW / 2}" y="${axisY + 30}" text-anchor="middle" ${FONT}>time per operation (log scale)</text></g>`,
  );
  parts.push(`<g class="axis y-axis"><line x1="${left}" y1="${top}" x2="${left}" y2="${axisY}" stroke="#333"/></g>`);
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    parts.push(`<g class="row" data-operation="${esc(r.label)}">`);
    parts.push(`<text x="${left - 6}" y="${y + rowH / 2 + 4}" text-anchor="end" ${FONT}>${esc(r.label)}${r.suspect ? ' (suspect)' : ''}</text>`);
    const x0 = xAt(r.min > 0 ? r.min : lo);
    parts.push(
      `<rect class="documented" x="${n(x0)}" y="${y + 6}" width="${n(Math.max(2, xAt(r.max) - x0))}" height="${rowH - 12}" fill="${r.suspect ? '#f4c2c2' : '#ccc'}"><title>${esc(`documented: ${r.min > 0 ? `${r.min}–${r.max}` : `< ${r.max}`} ms`)}</title></rect>`,
    );
    for (const m of r.measured) {
      parts.push(
        `<circle class="measured" data-driver="${esc(m.driver)}" cx="${n(xAt(m.ms))}" cy="${y + rowH / 2}" r="4" fill="${colours.get(m.driver)}"><title>${esc(`${m.driver}: ${m.ms.toPrecision(3)} ms`)}</title></circle>`,
      );
    }
    parts.push('</g>');
  });
  const key = `<g class="legend-documented"><rect x="${width - legendW + 10}" y="${top + drivers.length * 16 + 8}" width="10" height="10" fill="#ccc"/><text x="${width - legendW + 24}" y="${top + drivers.length * 16 + 17}" ${FONT}>documented range</text></g>`;
  return svgDoc(
    width,
    height,
    title,
    `<text x="10" y="18" ${TITLE_FONT}>${esc(title)}</text>${parts.join('\n')}${legend(drivers, colours, width - legendW + 10, top)}${key}`,
  );
}

function svgDoc(width: number, height: number, title: string, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${Math.round(width)}" height="${Math.round(height)}" viewBox="0 0 ${Math.round(width)} ${Math.round(height)}" role="img">
<title>${esc(title)}</title>
<rect width="100%" height="100%" fill="#fff"/>
${body}
</svg>
`;
}
