/**
 * Prints one plain closing line, "N passed, N failed, N skipped", after vitest's own summary, so that CI
 * logs can be read by tools that do not know vitest. A test file whose worker died (a native crash)
 * leaves its tests pending and "ok" in vitest's model; they are counted as failed here and the exit code
 * is forced to 1 (observed with vitest 4.1; docs/architecture.md). A file that failed outside its tests
 * (an import error, a failed beforeAll) counts as one failure, so the line never says "0 failed" for a
 * run that failed. The same counts go to .vitest-reports/summary.json, so scripts/ci.mjs can close its log with
 * one line for `npm test` and `npm run test:slow` together.
 */
import { join } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { writeFileAtomic } from '../../src/fsutil.js';
import { mkdir } from 'node:fs/promises';

export default class SummaryLineReporter implements Reporter {
  async onTestRunEnd(modules: ReadonlyArray<TestModule>): Promise<void> {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      const crashed = m.state() === 'pending' || m.state() === 'queued';
      const failedBefore = failed;
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (crashed || state === 'failed' || state === 'pending') failed++;
        else if (state === 'skipped') skipped++;
        else passed++;
      }
      if (m.state() === 'failed' && failed === failedBefore) {
        failed++;
        process.stderr.write(`test file failed outside its tests: ${m.moduleId}\n`);
      }
      if (crashed) {
        process.stderr.write(`test file did not finish (worker crashed?): ${m.moduleId}\n`);
        process.exitCode = 1;
      }
    }
    const dir = join(import.meta.dirname, '..', '..', '.vitest-reports');
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(join(dir, 'summary.json'), `${JSON.stringify({ passed, failed, skipped })}\n`);
    // Let the other reporters (JUnit prints where it wrote) finish first: this must be the last line.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
