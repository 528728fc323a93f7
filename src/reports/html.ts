/**
 * index.html: one self-contained page for people who will not read JSON, in the page shell of ./page.ts
 * (inline CSS and SVG, no script, a Content-Security-Policy that forbids every fetch). Every piece of text
 * from a token, a server or a suite goes through esc().
 */
import type { CaseRecord, CaseStatus, DriverReport, RunResults, SuitabilityVerdict } from '../results.js';
import { CASE_STATUSES, basisLabel, securityFindings, statusLabel, verdictLabel } from '../results.js';
import { MATRIX_COLUMNS, hiddenBy } from './capabilities.js';
import { esc, page } from './page.js';
import type { SectionReport } from './sections.js';

/** An id usable in href="#…": driver ids are simple, but nothing here trusts that. */
const anchor = (prefix: string, s: string) => `${prefix}-${s.replace(/[^A-Za-z0-9_-]/g, '_')}`;
/** The id of one case's row in index.html, for links from verdicts and sections. */
export const caseAnchor = (driver: string, suite: string, name: string) => anchor('case', `${driver}/${suite}/${name}`);

export const pill = (status: string, text = status) => `<span class="pill s-${esc(status.replace(/[^a-z]/g, ''))}">${esc(text)}</span>`;
const suitabilityPill = (v: SuitabilityVerdict) => {
  const label = verdictLabel(v);
  return pill(label === 'suitable' ? 'pass' : label === 'not tested' ? 'skip' : 'fail', label);
};

function mark(v: boolean | undefined): string {
  if (v === undefined) return '<td class="na" title="not tried">–</td>';
  return v ? '<td class="yes" title="works">✔</td>' : '<td class="no" title="does not work">✘</td>';
}

export function table(headers: string[], rows: string[][], cls = ''): string {
  return (
    `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`
  );
}

// ---------------------------------------------------------------------------------------------------------
// Generic rendering, for sections whose shape this file does not know (new suites need no change here).

const MAX_ROWS = 500;
export const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown) => v === null || typeof v !== 'object';

/** Arrays of objects become tables, objects become key/value lists, everything else escaped text. */
export function renderValue(v: unknown, depth = 0): string {
  if (v === null || v === undefined || v === '') return '<span class="muted">–</span>';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  // Measured figures: three significant decimals are plenty for a reader; results.json keeps them all.
  if (typeof v === 'number' && !Number.isInteger(v)) return esc(Number(v.toPrecision(4)));
  if (typeof v !== 'object') return esc(v);
  if (depth >= 4) return `<code>${esc(JSON.stringify(v))}</code>`;
  if (Array.isArray(v)) {
    if (v.length === 0) return '<span class="muted">none</span>';
    if (v.every(isScalar)) return esc(v.map((x) => String(x)).join(', '));
    if (v.every(isPlainObject)) return objectTable(v, depth);
    return `<ol>${v.map((x) => `<li>${renderValue(x, depth + 1)}</li>`).join('')}</ol>`;
  }
  const entries = Object.entries(v);
  if (entries.length === 0) return '<span class="muted">none</span>';
  return `<dl>${entries.map(([k, x]) => `<dt>${esc(k)}</dt><dd>${renderValue(x, depth + 1)}</dd>`).join('')}</dl>`;
}

function objectTable(rows: Record<string, unknown>[], depth: number): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const shown = rows.slice(0, MAX_ROWS);
  const body = shown.map((r) => columns.map((c) => renderValue(r[c], depth + 1)));
  const more = rows.length > shown.length ? `<p class="muted">${rows.length - shown.length} more rows in results.json</p>` : '';
  return table(columns, body) + more;
}

// ---------------------------------------------------------------------------------------------------------
// Sections. A suite's renderer (Suite.report.html, beside the suite) returns undefined when the data is not in
// the expected shape, and the generic renderer takes over: a section from a newer suite version still shows.

/** A number for people: a few significant digits, no exponent. */
export function num(n: unknown, digits = 3): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  if (Math.abs(n) >= 10 ** digits) return Math.round(n).toLocaleString('en-US');
  return esc(Number(n.toPrecision(digits)).toString());
}

/** Sections the core itself writes (src/runner/context.ts); a suite's section is described by its Suite.report. */
const CORE_SECTIONS: Record<string, string> = {
  expectations: 'Expectations file: unexpected passes, stale and unverified entries',
};

function renderSection(name: string, data: unknown, reports: ReadonlyMap<string, SectionReport>): string {
  const report = reports.get(name);
  const body = report?.html?.(data) ?? renderValue(data);
  const title = report?.title ?? CORE_SECTIONS[name] ?? name;
  return `<section class="sub"><h3>${esc(title)}</h3>${body}</section>`;
}

// ---------------------------------------------------------------------------------------------------------
// Page parts.

function countStatuses(cases: CaseRecord[]): string {
  const n = new Map<CaseStatus, number>();
  for (const c of cases) n.set(c.status, (n.get(c.status) ?? 0) + 1);
  return (
    CASE_STATUSES.filter((s) => n.get(s))
      .map((s) => pill(s, `${n.get(s)} ${s}`))
      .join(' ') || '<span class="muted">no cases</span>'
  );
}

function driverStatus(d: DriverReport): string {
  if (!d.available) return `${pill('unavailable')} <span class="reason">${esc(d.availabilityReason)}</span>`;
  const tone = d.status === 'ran' ? 'pass' : 'fail';
  return `${pill(tone, d.status)}${d.statusReason ? ` <span class="reason">${esc(d.statusReason)}</span>` : ''}`;
}

function matrix(results: RunResults): string {
  const head = ['Driver', 'Kind', 'Status', ...MATRIX_COLUMNS.map((c) => c.title)];
  const rows = results.drivers.map(
    (d) =>
      `<tr data-driver="${esc(d.id)}"><th scope="row"><a href="#${anchor('driver', d.id)}">${esc(d.id)}</a></th>` +
      `<td>${esc(d.kind)}</td><td class="status">${driverStatus(d)}</td>` +
      `${MATRIX_COLUMNS.map((c) => {
        const transport = hiddenBy(d, c.key);
        return transport ? `<td class="hidden" title="hidden by ${esc(transport)}; the token behind it offers it">⊘</td>` : mark(d.capabilities[c.key]);
      }).join('')}</tr>`,
  );
  return `<section id="matrix"><h2>Capability matrix</h2>
<p class="muted">✔ works · ✘ does not work · ⊘ hidden by the transport (the token behind it offers it) · – not tried (unavailable, or not applicable)</p>
<div class="scroll"><table class="matrix"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>
<tbody>${rows.join('\n')}</tbody></table></div></section>`;
}

/** Accepted wrong credentials and the like: first on the page, above the matrix. */
function securityOverview(results: RunResults): string {
  const found = securityFindings(results.drivers);
  if (!found.length) return '';
  const items = found.map((f) => `<li>${pill('fail', 'security')} <b>${esc(f.driver)}</b> <span class="muted">${esc(f.suite)}</span> ${esc(f.text)}</li>`);
  return `<section id="security"><h2>Security findings</h2><ul class="findings">${items.join('')}</ul></section>`;
}

function suitabilityOverview(results: RunResults): string {
  const withVerdicts = results.drivers.filter((d) => d.suitability.length > 0);
  if (!withVerdicts.length) return '';
  const signers = [...new Set(withVerdicts.flatMap((d) => d.suitability.map((v) => v.signer)))];
  const rows = withVerdicts.map((d) => [
    `<a href="#${anchor('driver', d.id)}">${esc(d.id)}</a>`,
    ...signers.map((s) => {
      const v = d.suitability.find((x) => x.signer === s);
      if (!v) return '–';
      const cases = v.basis?.kind === 'run' ? v.basis.cases.map((c) => `<a href="#${caseAnchor(d.id, 'signers', c)}">${esc(c)}</a>`).join(' ') : '';
      return (
        `${suitabilityPill(v)}<div class="reason">${esc(basisLabel(v))}${cases ? `: ${cases}` : ''}</div>` +
        `${v.reasons.length ? `<div class="reason">${v.reasons.map(esc).join('<br>')}</div>` : ''}`
      );
    }),
  ]);
  return `<section id="suitability"><h2>DNSSEC signer suitability</h2><div class="scroll">${table(['Driver', ...signers], rows)}</div></section>`;
}

function casesTable(cases: CaseRecord[]): string {
  const rows = cases.map((c) => [
    esc(c.suite),
    `<span id="${caseAnchor(c.driver, c.suite, c.case)}">${esc(c.case)}</span>`,
    pill(c.status, statusLabel(c)) + (c.unexpectedPass ? ' <span class="reason">passed, but expected not to: update the expectations file</span>' : ''),
    c.ckr ? `<code>${esc(c.ckr.name)}</code> <span class="muted">0x${esc(c.ckr.code.toString(16))}</span>` : '',
    `<span class="nw">${esc(c.durationMs.toFixed(0))} ms</span>`,
    `${c.reason ? `<span class="reason">${esc(c.reason)}</span>` : ''}${c.details && Object.keys(c.details).length ? renderValue(c.details, 2) : ''}`,
  ]);
  return table(['Suite', 'Case', 'Status', 'CKR', 'Time', 'Reason / details'], rows, 'cases');
}

function driverSection(d: DriverReport, sections: ReadonlyMap<string, SectionReport>): string {
  const parts: string[] = [];
  parts.push(`<section class="driver" id="${anchor('driver', d.id)}"><h2>${esc(d.id)} <small>${esc(d.title)}</small></h2>`);
  parts.push(
    `<p>${driverStatus(d)}${d.available ? ` · ${esc(d.availabilityReason)}` : ''}${d.durationMs !== undefined ? ` · ${esc((d.durationMs / 1000).toFixed(1))} s` : ''}</p>`,
  );
  if (!d.available) return `${parts.join('')}</section>`;
  parts.push(`<p>${countStatuses(d.cases)}</p>`);
  if (Object.keys(d.info).length)
    parts.push(`<section class="sub"><h3>${d.kind === 'pkcs11' ? 'Library and token' : 'Target'}</h3>${renderValue(d.info, 1)}</section>`);
  if (d.suitability.length) {
    parts.push(
      `<section class="sub"><h3>Suitability</h3><ul>${d.suitability
        .map((v) => `<li><b>${esc(v.signer)}</b>: ` + `${suitabilityPill(v)}${v.reasons.length ? ` — ${v.reasons.map(esc).join('; ')}` : ''}</li>`)
        .join('')}</ul></section>`,
    );
  }
  if (d.findings.length) {
    parts.push(
      `<section class="sub"><h3>Findings</h3><ul class="findings">${d.findings
        .map(
          (f) =>
            `<li>${pill(f.kind === 'note' ? 'skip' : f.kind === 'unadvertised' || f.kind === 'transport' ? 'unsupported' : 'fail', f.kind)} <span class="muted">${esc(f.suite)}</span> ${esc(f.text)}</li>`,
        )
        .join('')}</ul></section>`,
    );
  }
  if (d.transport) {
    const t = d.transport;
    parts.push(
      `<section class="sub"><h3>Transport</h3><p>${esc(t.name)}: ${esc(t.through)} of the ${esc(t.direct)} mechanisms the token offers directly arrive.</p>` +
        (t.hiddenMechanisms.length ? `<p>Hidden by ${esc(t.name)} (not missing from the token): <code>${esc(t.hiddenMechanisms.join(', '))}</code></p>` : '') +
        '</section>',
    );
  }
  if (d.mechanisms.length) {
    const rows = d.mechanisms.map((m) => [
      `<code>${esc(m.name)}</code>`,
      `0x${esc(m.code.toString(16))}`,
      esc(m.minKeySize),
      esc(m.maxKeySize),
      esc(m.flags.join(' ')),
      m.exercised ? (m.exercised === 'works' ? pill('pass', 'works') : `<span class="reason">${esc(m.exercised)}</span>`) : '',
    ]);
    parts.push(
      `<section class="sub"><details><summary><h3>Mechanisms (${d.mechanisms.length})</h3></summary>` +
        `${table(['Mechanism', 'Code', 'Min', 'Max', 'Flags', 'Exercised'], rows, 'mechanisms')}</details></section>`,
    );
  }
  if (Object.keys(d.goldenCodes).length) {
    parts.push(
      `<section class="sub"><h3>Observed return codes</h3>${table(
        ['Case', 'Code'],
        Object.entries(d.goldenCodes).map(([k, v]) => [esc(k), `<code>${esc(v)}</code>`]),
      )}</section>`,
    );
  }
  for (const [name, data] of Object.entries(d.sections)) parts.push(renderSection(name, data, sections));
  if (d.cases.length) {
    const open = d.cases.some((c) => c.status === 'fail' || c.status === 'crash' || c.status === 'timeout') ? ' open' : '';
    parts.push(`<section class="sub"><details${open}><summary><h3>Cases (${d.cases.length})</h3></summary>${casesTable(d.cases)}</details></section>`);
  }
  return `${parts.join('\n')}</section>`;
}

/** index.html; `sections` says how the suites that describe their sections (Suite.report) want them shown. */
export function renderHtml(results: RunResults, sections: ReadonlyMap<string, SectionReport> = new Map()): string {
  const overviews = [...sections.values()].flatMap((r) => r.overview?.(results) ?? []);
  const s = results.summary;
  const env = results.environment;
  return page(
    `hsm-harness report ${results.finishedAt}`,
    `
<header><h1>hsm-harness report</h1>
<p class="muted">hsm-harness ${esc(results.tool.version)} · ${esc(results.startedAt)} → ${esc(results.finishedAt)} · Node ${esc(env.node)} · ${esc(env.platform)}/${esc(env.arch)} · ${esc(env.hostname)}${env.ci ? ' · CI' : ''}</p>
<p class="summary"><b>${esc(s.total)} cases</b> ${CASE_STATUSES.filter((k) => s[k] > 0)
      .map((k) => pill(k, `${s[k]} ${k}`))
      .join(' ')}</p>
<nav>${securityFindings(results.drivers).length ? '<a href="#security">Security</a>' : ''}<a href="#matrix">Matrix</a>${results.drivers.some((d) => d.suitability.length) ? '<a href="#suitability">Suitability</a>' : ''}${overviews.map((o) => `<a href="#${esc(o.id)}">${esc(o.title)}</a>`).join('')}${results.drivers.map((d) => `<a href="#${anchor('driver', d.id)}">${esc(d.id)}</a>`).join('')}</nav>
</header>
<main>
${securityOverview(results)}
${matrix(results)}
${suitabilityOverview(results)}
${overviews.map((o) => `<section id="${esc(o.id)}"><h2>${esc(o.title)}</h2>${o.html}</section>`).join('\n')}
${results.drivers.map((d) => driverSection(d, sections)).join('\n')}
</main>
<footer><p class="muted">Full data: results.json · JUnit: junit.xml · Markdown: capabilities.md</p></footer>
`,
  );
}
