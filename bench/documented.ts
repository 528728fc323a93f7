/**
 * The SmartCard-HSM performance table published by go-keychain (fixtures/perf/smartcard-hsm-documented.json)
 * against measured figures. Verdicts only make sense for the documented device, recognised from the token's
 * own manufacturer (C_GetTokenInfo), never from the driver: an emulated card or another vendor's token
 * behind the same driver gets the table beside its figures as a reference only.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../src/paths.js';
import type { BenchSection, DocumentedComparison, DocumentedSection } from './types.js';

export interface DocumentedRow {
  operation: string;
  documented: string;
  notes: string;
  minMs: number;
  maxMs: number;
  measure?: string;
  suspect?: string;
}

export interface DocumentedTable {
  family: string;
  /** Case-insensitive substring of the token's manufacturerID that identifies the documented device. */
  identify: { manufacturer: string };
  source: { document: string; device: string; reliability: string };
  rows: DocumentedRow[];
}

export function loadDocumentedTable(path = join(projectRoot(), 'fixtures', 'perf', 'smartcard-hsm-documented.json')): DocumentedTable {
  return JSON.parse(readFileSync(path, 'utf8')) as DocumentedTable;
}

export function verdict(measuredMs: number, row: Pick<DocumentedRow, 'minMs' | 'maxMs'>): 'within' | 'faster' | 'slower' {
  if (measuredMs < row.minMs) return 'faster';
  if (measuredMs > row.maxMs) return 'slower';
  return 'within';
}

/** Mean time per operation for a documented row's "measure" key (keygen:ALG, sign:ALG, random:BYTES). */
export function measuredMs(section: Pick<BenchSection, 'keygen' | 'sign' | 'random'>, measure: string): number | undefined {
  const [kind, what] = measure.split(':');
  if (kind === 'keygen') return section.keygen.find((k) => k.alg === what)?.latency.mean;
  if (kind === 'sign') return section.sign.find((s) => s.alg === what)?.latency.mean;
  if (kind === 'random') return section.random && String(section.random.bytes) === what ? section.random.latency.mean : undefined;
  return undefined;
}

/** Token identity as C_GetTokenInfo reports it (trimmed). */
export interface TokenIdentity {
  manufacturer: string;
  model: string;
}

export function isDocumentedDevice(table: DocumentedTable, token: TokenIdentity): boolean {
  return token.manufacturer.toLowerCase().includes(table.identify.manufacturer.toLowerCase());
}

export function compareWithDocumented(
  table: DocumentedTable,
  section: Pick<BenchSection, 'keygen' | 'sign' | 'random'>,
  token: TokenIdentity,
): DocumentedSection {
  const applies = isDocumentedDevice(table, token);
  const rows: DocumentedComparison[] = table.rows.map((row) => {
    const out: DocumentedComparison = { operation: row.operation, documented: row.documented, notes: row.notes };
    if (row.suspect) out.suspect = row.suspect;
    if (row.measure) {
      out.measure = row.measure;
      const ms = measuredMs(section, row.measure);
      if (ms !== undefined) {
        out.measuredMs = ms;
        if (applies) out.verdict = verdict(ms, row);
      }
    }
    return out;
  });
  return {
    family: table.family,
    source: `${table.source.document} (${table.source.reliability})`,
    applies,
    token: `${token.manufacturer} ${token.model}`.trim(),
    rows,
  };
}
