/** The one Markdown table builder of capabilities.md, bench.md and the merged site's tested-hsms.md. */
import { escText } from './page.js';

/** A cell that cannot break its row: the column separator behind a backslash, one line. */
export const plainCell = (v: string | number) =>
  String(v)
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');

/**
 * A cell for text from elsewhere (a token's label, a run's host): HTML's own characters as entities (so no
 * renderer can see a tag), Markdown's inline markup and the column separator behind a backslash, one line.
 */
export const mdCell = (s: string) =>
  escText(s)
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ')
    .replace(/([*_`[\]])/g, '\\$1');

/** Header, separator and rows, every cell (head too) through `cell`; no trailing newline. */
export function markdownTable(head: readonly string[], rows: readonly (readonly (string | number)[])[], cell: (v: string) => string = plainCell): string[] {
  const row = (r: readonly (string | number)[]) => `| ${r.map((v) => cell(String(v))).join(' | ')} |`;
  return [row(head), `|${head.map(() => '---').join('|')}|`, ...rows.map(row)];
}
