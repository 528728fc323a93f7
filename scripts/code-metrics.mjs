#!/usr/bin/env node
// The measures docs/architecture.md reports before and after a structural change, always with this one formatter:
// lines per area, the ten longest functions outside tests, and the `duplicates` pairs outside tests.
// Usage: node scripts/code-metrics.mjs [--no-duplicates]   (plain Node; the TypeScript compiler API from devDependencies)
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CODE = /\.(ts|mjs|cjs|js)$/;
// What ships or runs (tests apart): the areas whose size and repetition the measures are about.
const SOURCE_DIRS = ['src', 'suites', 'drivers', 'bench', 'containers', 'scripts'];

function filesUnder(dir) {
  const abs = join(root, dir);
  let names;
  try {
    names = readdirSync(abs);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const rel = join(dir, n);
    return statSync(join(root, rel)).isDirectory() ? filesUnder(rel) : CODE.test(n) ? [rel] : [];
  });
}

const lineCount = (file) => readFileSync(join(root, file), 'utf8').split('\n').length - 1;

/** src/ by subfolder (its top-level files as `src/*.ts`), the other areas whole. */
function area(file) {
  const parts = file.split('/');
  if (parts[0] === 'src') return parts.length > 2 ? `src/${parts[1]}/` : 'src/*.ts';
  return `${parts[0]}/`;
}

function linesPerArea() {
  const totals = new Map();
  for (const f of [...SOURCE_DIRS, 'test'].flatMap(filesUnder)) totals.set(area(f), (totals.get(area(f)) ?? 0) + lineCount(f));
  return [...totals].sort(([a], [b]) => a.localeCompare(b));
}

/** The name a reader would look for: the declaration's own, or the variable / property / call it is assigned to. */
function functionName(node, sf) {
  if (node.name) return node.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const p = node.parent;
  if (p && (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.name) return p.name.getText(sf);
  if (p && ts.isCallExpression(p)) return `(argument of ${p.expression.getText(sf).slice(0, 40)})`;
  return '(anonymous)';
}

function longestFunctions(n) {
  const found = [];
  for (const file of SOURCE_DIRS.filter((d) => d !== 'scripts').flatMap(filesUnder)) {
    if (!file.endsWith('.ts')) continue;
    const sf = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(node.end).line;
        found.push({ lines: end - start + 1, where: `${file}:${start + 1}`, name: functionName(node, sf) });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found.sort((a, b) => b.lines - a.lines || a.where.localeCompare(b.where)).slice(0, n);
}

/** `duplicates` over a copy of the source areas only, so every pair it lists is outside test/. */
function duplicatePairs() {
  const copy = mkdtempSync(join(tmpdir(), 'code-metrics-'));
  try {
    for (const d of SOURCE_DIRS) cpSync(join(root, d), join(copy, d), { recursive: true, filter: (s) => !s.includes('node_modules') });
    const out = execFileSync('duplicates', ['--repo', copy, '--most', '200', '--seconds', '120'], { encoding: 'utf8' });
    return out.trim().split('\n');
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

const out = [];
out.push('## Lines per area', '', '| area | lines |', '| --- | ---: |');
const areas = linesPerArea();
for (const [a, n] of areas) out.push(`| ${a} | ${n} |`);
const outside = areas.filter(([a]) => a !== 'test/').reduce((s, [, n]) => s + n, 0);
out.push(`| (all but test/) | ${outside} |`, '');
out.push('## Ten longest functions (outside tests and scripts)', '', '| lines | function | where |', '| ---: | --- | --- |');
for (const f of longestFunctions(10)) out.push(`| ${f.lines} | ${f.name} | ${f.where} |`);
out.push('');
if (!process.argv.includes('--no-duplicates')) {
  const rows = duplicatePairs();
  out.push('## duplicates pairs outside tests', '', `${rows[0]}`, '', '```', ...rows.slice(1), '```');
}
console.log(out.join('\n'));
