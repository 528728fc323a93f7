/**
 * Vitest global setup of the tiers that run the build (integration, slow): 42 test files start dist/src/cli.js
 * or the built runner, so a source edit without `npm run build` would silently test the old code. This
 * rebuilds (tsc, once per vitest invocation) when any source is newer than its build, and stops the run with
 * tsc's own message when the build fails. The unit tier imports the sources directly and needs no build.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runTool } from '../../src/proc.js';

const ROOT = join(import.meta.dirname, '..', '..');
/** What tsconfig.json compiles (its "include"), plus the config itself: any of them newer than dist/ means stale. */
export const SOURCE_DIRS = ['src', 'drivers', 'suites', 'bench', 'containers'];
const CONFIGS = ['tsconfig.json'];

function tsFiles(dir: string): string[] {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * Why the build under `root`/dist is stale, or undefined when it is fresh. tsc rewrites every output on each
 * build, so the build is fresh when each source has its .js and the oldest of those is not older than the
 * newest source or config.
 */
export function staleBuild(root: string): string | undefined {
  let newestSource = { path: '', mtime: 0 };
  let oldestOutput = Number.POSITIVE_INFINITY;
  for (const config of CONFIGS) {
    const m = mtimeOf(join(root, config)) ?? 0;
    if (m > newestSource.mtime) newestSource = { path: config, mtime: m };
  }
  for (const dir of SOURCE_DIRS) {
    for (const src of tsFiles(join(root, dir))) {
      const rel = relative(root, src);
      const out = mtimeOf(join(root, 'dist', rel.replace(/\.ts$/, '.js')));
      if (out === undefined) return `dist/ has no build of ${rel}`;
      oldestOutput = Math.min(oldestOutput, out);
      const m = mtimeOf(src) ?? 0;
      if (m > newestSource.mtime) newestSource = { path: rel, mtime: m };
    }
  }
  return newestSource.mtime > oldestOutput ? `${newestSource.path} is newer than dist/` : undefined;
}

/** Builds when stale; returns what it did, for the log. Throws tsc's output when the build fails. */
export async function ensureFreshBuild(root: string = ROOT): Promise<string> {
  const why = staleBuild(root);
  if (why === undefined) return 'dist/ is up to date';
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await runTool(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { cwd: root, timeoutMs: 300_000 });
  if (r.code !== 0) {
    throw new Error(`the build failed (${why}), so the tests would run old code; fix it and run again:\n${(r.stdout + r.stderr).trim()}`);
  }
  return `rebuilt dist/ (${why})`;
}

// Each project that lists this setup calls it; one build serves the whole vitest invocation.
const shared = globalThis as { hsmHarnessBuild?: Promise<string> };

export default async function setup(): Promise<void> {
  shared.hsmHarnessBuild ??= ensureFreshBuild();
  const said = await shared.hsmHarnessBuild;
  if (said !== 'dist/ is up to date') process.stderr.write(`self-tests: ${said}\n`);
}
