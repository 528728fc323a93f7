import { configDefaults, defineConfig } from 'vitest/config';

// Four tiers, chosen by file name (README "Self-tests"): unit starts no CLI, module or server and imports the
// sources directly; integration runs the build against SoftHSM, p11-kit, PyKMIP and real signers; slow needs
// Chromium, the container engine, a card, or runs whole benchmarks and default matrices; alone measures
// performance claims that hold only on an otherwise idle machine, so it runs last, one file at a time.
const UNIT = 'test/**/*.unit.test.ts';
const SLOW = 'test/**/*.slow.test.ts';
const ALONE = 'test/**/*.alone.test.ts';
// The tiers that run dist/ rebuild it first when a source is newer (test/setup/fresh-build.ts).
const FRESH_BUILD = './test/setup/fresh-build.ts';

export default defineConfig({
  test: {
    // forks: a native crash kills one worker, not the run (observed with vitest 4.1; docs/architecture.md).
    pool: 'forks',
    // Four on 2 cores: unit and integration tests spend about half their time waiting on the processes they start
    // (signers, servers, the CLI); measured on 2 cores, 2 workers kept the CPUs 148 % busy in 171 s, 4 kept them
    // 190 % busy in 134 s. The slow tier keeps 2: Chromium, the engine and whole benchmarks saturate the machine.
    maxWorkers: 4,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', ['junit', { suiteName: 'hsm-harness self-tests' }], './test/reporters/summary-line.ts'],
    outputFile: { junit: '.vitest-reports/junit.xml' },
    projects: [
      { extends: true, test: { name: 'unit', include: [UNIT] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, UNIT, SLOW, ALONE],
          globalSetup: [FRESH_BUILD],
        },
      },
      { extends: true, test: { name: 'slow', include: [SLOW], globalSetup: [FRESH_BUILD], maxWorkers: 2 } },
      // groupOrder 1: in a plain `vitest run` (test:all) this tier starts only when every other tier has finished.
      {
        extends: true,
        test: { name: 'alone', include: [ALONE], globalSetup: [FRESH_BUILD], maxWorkers: 1, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
