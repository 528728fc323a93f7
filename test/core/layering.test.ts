/**
 * The layering of docs/architecture.md, checked with dependency-cruiser over the sources (rules in
 * .dependency-cruiser.cjs): no import cycles; src/ imports no suite, benchmark or driver; a driver imports no
 * other driver; suites and benchmarks import no driver.
 */
import { describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

const exec = promisify(execFile);

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
  cycle?: { name: string }[];
}

describe('import graph', () => {
  test('has no cycles and keeps src/ free of suites, benchmarks and drivers; drivers stand alone', async () => {
    const bin = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
    const r = await exec('node', [bin, '--config', '.dependency-cruiser.cjs', '--output-type', 'json', 'src', 'drivers', 'suites', 'bench'], {
      cwd: ROOT,
      maxBuffer: 256 * 1024 * 1024,
      timeout: 300_000,
    }).catch((e: { stdout: string }) => e);
    const out = JSON.parse(r.stdout) as { summary: { totalCruised: number; violations: Violation[] } };
    // The cruise saw the tree (a wrong path would find nothing and break no rule).
    expect(out.summary.totalCruised).toBeGreaterThan(100);
    const edges = out.summary.violations.map(
      (v) => `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (cycle ${v.cycle.map((c) => c.name).join(' → ')})` : ''}`,
    );
    expect(edges).toEqual([]);
  });
});
