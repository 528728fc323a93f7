import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // forks: a native crash kills one worker, not the run (observed with vitest 4.1; docs/architecture.md).
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', ['junit', { suiteName: 'hsm-harness self-tests' }], './test/reporters/summary-line.ts'],
    outputFile: { junit: '.vitest-reports/junit.xml' },
  },
});
