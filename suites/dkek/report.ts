/**
 * The section the DKEK suites write (sections.dkek), typed for every reader of DriverReport.sections, and how
 * it appears in index.html (Suite.report of each DKEK suite).
 */
import type { SectionReport } from '../../src/reports/sections.js';
import type { KeyAlg } from '../../src/pkcs11/keys.js';
import { isPlainObject, pill, renderValue, table } from '../../src/reports/html.js';
import { esc } from '../../src/reports/page.js';

export interface RoundTrip {
  alg: KeyAlg;
  method: string;
  status: 'pass' | 'fail' | 'skip' | 'unsupported';
}

/** Which backup path ran, where the DKEK came from, its key check value and one entry per round trip. */
export interface DkekSection {
  path: string;
  roundTrips: RoundTrip[];
  dkekSource?: string;
  kcv?: string;
}

declare module '../../src/results.js' {
  interface SectionTypes {
    dkek: DkekSection;
  }
}

/** The path taken, the key check value, and one row per key. */
function renderDkek(data: unknown): string | undefined {
  if (!isPlainObject(data) || !Array.isArray(data.roundTrips)) return undefined;
  const { roundTrips, ...rest } = data;
  const rows = roundTrips
    .filter(isPlainObject)
    .map((r) => [
      esc(r.alg),
      esc(r.method),
      pill(String(r.status)),
      r.blobBytes === undefined ? '–' : esc(r.blobBytes),
      r.note ? `<span class="reason">${esc(r.note)}</span>` : '',
    ]);
  return (
    renderValue(rest, 1) +
    (rows.length ? table(['Key', 'Method', 'Status', 'Blob bytes', 'Note'], rows, 'dkek-round-trips') : '<p class="muted">no round trips ran</p>')
  );
}

export const dkekReport: SectionReport = { title: 'DKEK backup and restore round trips', html: renderDkek };
