/**
 * Issue 22's shape of the suites: every suite is a table of named cases (no suite calls ctx.case itself), and
 * no function in suites/ is longer than 80 lines. The lengths are counted on the source with the TypeScript
 * compiler's parser: every function, method, accessor and arrow function, from its first line to its last.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';
import { suites } from '../../suites/index.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SUITES = join(ROOT, 'suites');
const MAX_LINES = 80;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every function-like node of a file with its name (or where it is) and its length in lines. */
function functionLengths(file: string, text: string): { where: string; lines: number }[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: { where: string; lines: number }[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const name = node.name && ts.isIdentifier(node.name) ? node.name.text : `function at line ${first + 1}`;
      out.push({ where: `${relative(ROOT, file)} ${name}`, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

describe('suites are tables of short, named cases', () => {
  test(`no function in suites/ is longer than ${MAX_LINES} lines`, () => {
    const all = tsFiles(SUITES).flatMap((f) => functionLengths(f, readFileSync(f, 'utf8')));
    expect(all.length).toBeGreaterThan(100);
    const long = all.filter((f) => f.lines > MAX_LINES).map((f) => `${f.where}: ${f.lines} lines`);
    expect(long).toEqual([]);
  });

  test('the counter sees a long function (so a passing count means something)', () => {
    const body = Array.from({ length: MAX_LINES }, (_, i) => `  const x${i} = ${i};`).join('\n');
    const [f] = functionLengths('x.ts', `function long() {\n${body}\n}\n`);
    expect(f).toEqual({ where: 'x.ts long', lines: MAX_LINES + 2 });
  });

  test('every suite is a table of cases; none is one function that calls ctx.case itself', () => {
    const notTables = suites.filter((s) => !Array.isArray(s.cases) || 'run' in s).map((s) => s.name);
    expect(notTables).toEqual([]);
  });
});
