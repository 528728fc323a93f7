/**
 * The sections the KMIP suites write (sections.kmip, sections['kmip-robustness']), typed for every reader of
 * DriverReport.sections, and how the conformance section appears in index.html (Suite.report).
 */
import type { SectionReport } from '../../src/reports/sections.js';
import { isPlainObject, pill, renderValue, table } from '../../src/reports/html.js';
import { esc } from '../../src/reports/page.js';

/** What the conformance suite saw of one KMIP target: TLS, server facts and per-operation support. */
export interface KmipSection {
  profile?: string;
  address?: string;
  tls?: { version?: string; cipherStandardName?: string; cipher?: string; tls13Supported?: boolean };
  server?: { vendorIdentification?: string | null; advertisedOperations?: string[]; advertisedObjectTypes?: (string | number)[] };
  versions?: string[];
  /** Operation → listed by Query (null when Query did not answer) and what the suite observed. */
  operations?: Record<string, { advertised: boolean | null; observed: string }>;
  deviations?: string[];
}

declare module '../../src/results.js' {
  interface SectionTypes {
    kmip: KmipSection;
    /** Hostile input → the target's answer. */
    'kmip-robustness': Record<string, string>;
  }
}

/** The per-operation support table first, then connection and server facts. */
function renderKmip(data: unknown): string | undefined {
  if (!isPlainObject(data) || !isPlainObject(data.operations)) return undefined;
  const { operations, deviations, ...rest } = data;
  const observed = (o: unknown) => {
    const text = typeof o === 'string' ? o : 'not tried';
    if (text === 'works') return pill('pass', 'works');
    if (text.startsWith('fails')) return `${pill('fail', 'fails')} <span class="reason">${esc(text.replace(/^fails:?\s*/, ''))}</span>`;
    return `<span class="muted">${esc(text)}</span>`;
  };
  const advertised = (a: unknown) => (a === true ? 'yes' : a === false ? 'no' : '<span class="muted">unknown</span>');
  const rows = Object.entries(operations).map(([op, v]) => {
    const o = isPlainObject(v) ? v : { observed: v };
    return [esc(op), advertised(o.advertised), observed(o.observed)];
  });
  const out = [table(['Operation', 'Advertised (Query)', 'Observed'], rows, 'kmip-operations')];
  if (Array.isArray(deviations) && deviations.length) {
    out.push(`<h4>Deviations from KMIP 1.2</h4><ul>${deviations.map((d) => `<li>${esc(d)}</li>`).join('')}</ul>`);
  }
  out.push(renderValue(rest, 1));
  return out.join('\n');
}

export const kmipReport: SectionReport = { title: 'KMIP', html: renderKmip };
