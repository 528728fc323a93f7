/**
 * Runs cases inside a driver's process and turns their outcome into CaseRecords, following the status model
 * of src/results.ts: a thrown error is `fail`, c.unsupported() / c.skip() are `unsupported` / `skip`, and the
 * driver's expectations file is applied where an entry matches the observed outcome.
 */
import type { CaseHandle, CaseOptions, SuiteContext } from '../suite.js';
import { CaseStop } from '../suite.js';
import type { CaseRecord, CaseStatus, DriverReport, Finding } from '../results.js';
import type { Connections, DriverTraits } from '../driver.js';
import type { Token } from '../pkcs11/token.js';
import { ckrOf } from '../pkcs11/ckr.js';
import { ckrName } from '../pkcs11/constants.js';
import { describeError, UsageError } from '../errors.js';
import { type Expectations, auditProblems } from '../expectations.js';
import { makeTempDir } from '../fsutil.js';
import { capability } from '../capabilities.js';

export interface CaseEvents {
  onCaseStart(suite: string, name: string, timeoutMs: number): void;
  onCaseEnd(record: CaseRecord): void;
  log(line: string): void;
  /** A temporary directory was created (true) or removed (false): the parent keeps the list to clean up. */
  onTempDir?(path: string, held: boolean): void;
}

export function makeContext(args: {
  driverId: string;
  traits: DriverTraits;
  env: NodeJS.ProcessEnv;
  connections: Connections;
  token?: Token;
  report: DriverReport;
  expectations: Expectations;
  events: CaseEvents;
  options?: Record<string, unknown>;
}): SuiteContext {
  const { report, expectations, events } = args;
  const ctx: SuiteContext = {
    driverId: args.driverId,
    traits: args.traits,
    env: args.env,
    connections: args.connections,
    token: args.token,
    report,
    suite: '',
    options: args.options ?? {},
    async case(name: string, fn: (c: CaseHandle) => unknown, opts: CaseOptions = {}): Promise<CaseStatus> {
      const suite = ctx.suite;
      const timeoutMs = opts.timeoutMs ?? args.traits.caseTimeoutMs;
      events.onCaseStart(suite, name, timeoutMs);
      const record: CaseRecord = { driver: args.driverId, suite, case: name, status: 'pass', durationMs: 0 };
      const handle: CaseHandle = {
        unsupported(reason: string): never {
          throw new CaseStop('unsupported', reason);
        },
        skip(reason: string): never {
          throw new CaseStop('skip', reason);
        },
        ckr(code: number) {
          record.ckr = { code, name: ckrName(code) };
        },
        detail(key: string, value: unknown) {
          (record.details ??= {})[key] = value;
        },
      };
      const t0 = performance.now();
      try {
        await fn(handle);
      } catch (err) {
        if (err instanceof UsageError) throw err;
        if (err instanceof CaseStop) {
          record.status = err.status;
          record.reason = describeError(err);
        } else {
          record.status = 'fail';
          const code = ckrOf(err);
          if (code !== undefined && !record.ckr) record.ckr = { code, name: ckrName(code) };
          record.reason = describeError(err);
        }
      }
      record.durationMs = Math.round((performance.now() - t0) * 10) / 10;
      expectations.apply(`${suite}/${name}`, record, args.driverId);
      report.cases.push(record);
      events.onCaseEnd(record);
      return record.status;
    },
    capability(name, supported) {
      report.capabilities[capability(name)] = supported;
    },
    has(name) {
      return report.capabilities[name];
    },
    finding(kind: Finding['kind'], text: string) {
      // Said once: the same observation from every key or case is one finding.
      if (report.findings.some((f) => f.kind === kind && f.text === text)) return;
      report.findings.push({ driver: args.driverId, suite: ctx.suite, kind, text });
    },
    log(line: string) {
      events.log(line);
    },
    async tempDir(prefix: string) {
      const dir = await makeTempDir(prefix);
      events.onTempDir?.(dir.path, true);
      return {
        path: dir.path,
        remove: async () => {
          await dir.remove();
          events.onTempDir?.(dir.path, false);
        },
      };
    },
  };
  return ctx;
}

/**
 * After the suites: what the run made of the expectations file, into results.json (sections.expectations).
 * In CI (CI set) it is also a case that fails on an unexpected pass, a stale entry or an entry naming no case,
 * unless this run records new golden data (--update-golden); elsewhere it is reported only.
 */
export async function auditExpectations(ctx: SuiteContext, expectations: Expectations, opts: { ci: boolean; updateGolden: boolean }): Promise<void> {
  if (Object.keys(expectations.file.cases).length === 0) return;
  const audit = expectations.audit(new Set(ctx.report.cases.map((c) => c.suite)));
  ctx.report.sections.expectations = audit;
  if (!opts.ci || opts.updateGolden) return;
  ctx.suite = 'expectations';
  await ctx.case('audit', (c) => {
    c.detail('unverified', audit.unverified.length);
    const problems = auditProblems(audit);
    if (problems.length) throw new Error(`${expectations.path} is out of date: ${problems.join('; ')}`);
  });
}
