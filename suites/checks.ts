/**
 * The runner's own checks, after every other suite: what the run made of the driver's expectations file, whether
 * the token's return codes still match the recorded golden ones, and whether the token holds exactly the objects
 * it held before the run. They run under --suite and --case too (Suite.always): a run never skips its cleanup.
 */
import type { Suite } from '../src/suite.js';
import { auditProblems } from '../src/expectations.js';

/**
 * What the run made of the expectations file goes into results.json (sections.expectations). In CI (CI set) it is
 * also a case that fails on an unexpected pass, a stale entry or an entry naming no case, unless this run records
 * new golden data (--update-golden); elsewhere it is reported only.
 */
export const expectationsCheck: Suite = {
  name: 'expectations',
  title: 'Expectations file audit',
  always: true,
  setup(ctx) {
    const { expectations } = ctx.run;
    if (Object.keys(expectations.file.cases).length === 0) return undefined;
    const audit = expectations.audit(new Set(ctx.report.cases.map((c) => c.suite)), ctx.run.tableCases);
    ctx.report.sections.expectations = audit;
    return audit;
  },
  cases: [
    {
      name: 'audit',
      applies: (ctx) => ctx.run.ci && ctx.options.updateGolden !== true && Object.keys(ctx.run.expectations.file.cases).length > 0,
      run(c, audit, ctx) {
        c.detail('unverified', audit.unverified.length);
        const problems = auditProblems(audit);
        if (problems.length) throw new Error(`${ctx.run.expectations.path} is out of date: ${problems.join('; ')}`);
      },
    },
  ],
};

export const goldenCheck: Suite = {
  name: 'golden',
  title: 'Golden return codes',
  always: true,
  cases: [
    {
      name: 'return-codes',
      applies: (ctx) => !!ctx.run.expectations.file.goldenCodes && Object.keys(ctx.report.goldenCodes).length > 0,
      run(c, _state, ctx) {
        const { expectations } = ctx.run;
        const observed = ctx.report.goldenCodes;
        const diffs = expectations.goldenDifferences(observed);
        c.detail('compared', Object.keys(expectations.file.goldenCodes!).filter((k) => k in observed).length);
        if (diffs.length) {
          throw new Error(
            `return codes changed since drivers/${ctx.driverId}.expect.json was recorded: ${diffs.map((d) => `${d.situation}: ${d.observed}, golden ${d.golden}`).join('; ')} (review, then hsm-harness run --update-golden)`,
          );
        }
      },
    },
  ],
};

export const cleanupCheck: Suite = {
  name: 'cleanup',
  title: 'Objects restored',
  needs: 'pkcs11',
  always: true,
  cases: [
    {
      name: 'objects-restored',
      applies: (ctx) => !!ctx.token && ctx.run.objectsBefore !== undefined,
      run(c, _state, ctx) {
        const tok = ctx.token!;
        const before = ctx.run.objectsBefore!;
        const failures = tok.objects.cleanup();
        const after = tok.countObjects();
        c.detail('before', before);
        c.detail('after', after);
        if (tok.reconnects) c.detail('sessionsReopened', tok.reconnects);
        if (failures.length)
          throw new Error(`could not destroy ${failures.length} object(s): ${failures.map((f) => `CKA_ID ${f.id ?? '?'}: ${f.error}`).join(', ')}`);
        if (after !== before) throw new Error(`token had ${before} objects before the run and ${after} after`);
      },
    },
  ],
};
