/**
 * Runs cases inside a driver's process and turns their outcome into CaseRecords, following the status model
 * of src/results.ts: a thrown error is `fail`, c.unsupported() / c.skip() are `unsupported` / `skip`, and the
 * driver's expectations file is applied where an entry matches the observed outcome.
 */
import type { CaseHandle, CaseOptions, RunFacts, SuiteContext } from '../suite.js';
import { CaseStop } from '../suite.js';
import type { CaseRecord, CaseStatus, DriverReport, ExpectationSource, Finding } from '../results.js';
import type { Connections, DriverTraits } from '../driver.js';
import type { Token } from '../pkcs11/token.js';
import { ckrOf } from '../pkcs11/ckr.js';
import { ckrName } from '../pkcs11/constants.js';
import { describeError, UsageError } from '../errors.js';
import type { Expectations } from '../expectations.js';
import { makeTempDir } from '../fsutil.js';
import { capability } from '../capabilities.js';
import { type Limits, limitsFor } from './limits.js';

export interface CaseEvents {
  onCaseStart(suite: string, name: string, timeoutMs: number): void;
  onCaseEnd(record: CaseRecord): void;
  log(line: string): void;
}

export function makeContext(args: {
  driverId: string;
  traits: DriverTraits;
  /** Default: from the traits and the environment. */
  limits?: Limits;
  env: NodeJS.ProcessEnv;
  connections: Connections;
  token?: Token;
  report: DriverReport;
  expectations: Expectations;
  events: CaseEvents;
  options?: Record<string, unknown>;
  /** Default: the expectations above, no token count, not CI. */
  run?: RunFacts;
}): SuiteContext {
  const { report, expectations, events } = args;
  /** Set when a lost session could not be re-established: the case after which it happened. */
  let sessionGone: string | undefined;
  const ctx: SuiteContext = {
    driverId: args.driverId,
    traits: args.traits,
    limits: args.limits ?? limitsFor(args.traits, args.env),
    run: args.run ?? { expectations, ci: false },
    env: args.env,
    connections: args.connections,
    token: args.token,
    report,
    suite: '',
    options: args.options ?? {},
    async case(name: string, fn: (c: CaseHandle) => unknown, opts: CaseOptions = {}): Promise<CaseStatus> {
      const suite = ctx.suite;
      const timeoutMs = opts.timeoutMs ?? ctx.limits.caseMs;
      events.onCaseStart(suite, name, timeoutMs);
      const record: CaseRecord = { driver: args.driverId, suite, case: name, status: 'pass', durationMs: 0 };
      const handle: CaseHandle = {
        unsupported(reason: string): never {
          throw new CaseStop('unsupported', reason);
        },
        skip(reason: string): never {
          throw new CaseStop('skip', reason);
        },
        knownDefect(reason: string, source: ExpectationSource): never {
          throw new CaseStop('fail', reason, source);
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
        if (sessionGone && ctx.token && !opts.withoutSession)
          handle.skip(`blocked by ${sessionGone} (the session was lost after it and could not be re-established)`);
        await fn(handle);
      } catch (err) {
        if (err instanceof UsageError) throw err;
        if (err instanceof CaseStop) {
          record.status = err.status;
          record.reason = describeError(err);
          if (err.knownDefect) record.expected = { status: 'fail', source: err.knownDefect, verified: err.knownDefect.kind === 'run' };
        } else {
          record.status = 'fail';
          const code = ckrOf(err);
          if (code !== undefined && !record.ckr) record.ckr = { code, name: ckrName(code) };
          record.reason = describeError(err);
        }
      }
      record.durationMs = Math.round((performance.now() - t0) * 10) / 10;
      if (!sessionGone) sessionGone = restoreSession(ctx, record);
      // A known defect of the module already decided the verdict; the driver's file does not decide it twice.
      if (!record.expected) expectations.apply(`${suite}/${name}`, record);
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
    // In the ledger (makeTempDir), so the parent removes it if the case's process dies.
    tempDir: (prefix: string) => makeTempDir(prefix),
  };
  return ctx;
}

/**
 * Issue 21: a token that loses the login or the session (OpenSC after another process touched the card, a card
 * that logs out on an error) would fail every later case with CKR_USER_NOT_LOGGED_IN. After each case the
 * session is checked with C_GetSessionInfo and re-established when it is gone; the case after which it happened
 * says so (details.sessionRestored) and a note is recorded. Returns the case's id when it could not be restored.
 */
function restoreSession(ctx: SuiteContext, record: CaseRecord): string | undefined {
  if (!ctx.token) return undefined;
  const where = `${record.suite}/${record.case}`;
  try {
    const lost = ctx.token.restoreSession();
    if (!lost) return undefined;
    (record.details ??= {}).sessionRestored = `${lost}; opened a new session and logged in again`;
    ctx.log(`${where}: ${lost}; opened a new session and logged in again`);
    ctx.finding('note', `${lost} during ${where}; the harness opened a new session, logged in again and went on`);
    return undefined;
  } catch (err) {
    (record.details ??= {}).sessionRestored = `session lost and could not be re-established: ${describeError(err)}`;
    ctx.log(`${where}: the session was lost and could not be re-established: ${describeError(err)}`);
    return where;
  }
}
