/**
 * The layering rules of docs/architecture.md ("Layering"), checked by test/core/layering.test.ts:
 * src/ is the core and knows no driver, suite or benchmark by import; drivers stand alone; no cycles.
 */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'The import graph has no cycles.', from: {}, to: { circular: true } },
    {
      name: 'core-imports-no-plugins',
      severity: 'error',
      comment: 'src/ finds drivers and suites at run time by their folders (src/registry.ts); it never imports them.',
      from: { path: '^src/' },
      to: { path: '^(suites|bench|drivers)/' },
    },
    {
      name: 'drivers-stand-alone',
      severity: 'error',
      comment: 'A driver imports from src/ only; shared driver code lives in src/.',
      from: { path: '^drivers/' },
      to: { path: '^(drivers|suites|bench)/' },
    },
    {
      name: 'suites-not-drivers',
      severity: 'error',
      comment: 'A suite asks for capabilities and connections, never for a driver.',
      from: { path: '^(suites|bench)/' },
      to: { path: '^drivers/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
