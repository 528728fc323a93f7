/**
 * A driver's own process. The parent forks one per driver, so a module that segfaults or hangs takes
 * only this process down; the parent turns that into a crash or timeout record and goes on.
 */
import { driverById } from '../../drivers/index.js';
import { suites as allSuites } from '../../suites/index.js';
import { emptyDriverReport } from '../results.js';
import type { CaseRecord, DriverReport } from '../results.js';
import type { WorkerMessage, WorkerRequest } from './protocol.js';
import { makeContext } from './context.js';
import { Expectations } from '../expectations.js';
import { Token } from '../pkcs11/token.js';
import { UsageError, describeError } from '../errors.js';
import { redactValue, registerSecretsFromEnv } from '../secrets.js';
import type { StartedDriver } from '../driver.js';

function send(msg: WorkerMessage): void {
  // Everything that leaves this process is redacted (strings only, so numbers and structure survive).
  process.send?.(redactValue(msg));
}

async function main(req: WorkerRequest): Promise<void> {
  registerSecretsFromEnv(process.env);
  const driver = driverById(req.driverId);
  if (!driver) throw new UsageError(`unknown driver "${req.driverId}"`);
  const report: DriverReport = emptyDriverReport(driver.id, driver.title, driver.kind);
  report.available = true;
  report.status = 'ran';
  report.startedAt = new Date().toISOString();
  const t0 = performance.now();
  const expectations = Expectations.forDriver(driver.id);
  // HSM_CASE_TIMEOUT_S lets an operator tighten (or, for slow cards, widen) the per-case limit.
  const override = Number(process.env.HSM_CASE_TIMEOUT_S);
  const traits = override > 0 ? { ...driver.traits, caseTimeoutMs: override * 1000 } : driver.traits;
  const push = () => send({ type: 'report', report });

  send({ type: 'phase', phase: 'start', timeoutMs: override > 0 ? traits.caseTimeoutMs : Math.max(traits.caseTimeoutMs, traits.startTimeoutMs ?? 180_000) });
  let started: StartedDriver;
  try {
    started = await driver.start(process.env);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    report.status = 'error';
    report.statusReason = `driver start failed: ${describeError(err)}`;
    report.cases.push({ driver: driver.id, suite: 'driver', case: 'start', status: 'fail', durationMs: 0, reason: report.statusReason });
    push();
    return;
  }
  send({ type: 'resources', resources: started.resources });
  Object.assign(report.info, started.info ?? {});

  let token: Token | undefined;
  let objectsBefore: number | undefined;
  const pk = started.connections.pkcs11;
  try {
    if (pk) {
      Object.assign(process.env, pk.env);
      token = Token.open(pk.modulePath, pk.token, pk.pin);
      token.login();
      objectsBefore = token.countObjects();
    }
    const ctx = makeContext({
      driverId: driver.id, traits, env: process.env, connections: started.connections, token,
      report, expectations, options: req.options,
      events: {
        onCaseStart: (suite, name, timeoutMs) => send({ type: 'case-start', suite, case: name, timeoutMs }),
        onCaseEnd: (record: CaseRecord) => { send({ type: 'case-end', record }); push(); },
        log: (line) => send({ type: 'log', line }),
        onTempDir: (path, held) => {
          const dirs = started.resources.dirs.filter((d) => d !== path);
          started.resources.dirs = held ? [...dirs, path] : dirs;
          send({ type: 'resources', resources: started.resources });
        },
      },
    });
    send({ type: 'phase', phase: 'suites', timeoutMs: 0 });
    const wanted = req.suites;
    for (const suite of allSuites) {
      if (!started.connections[suite.needs]) continue;
      if (wanted ? !wanted.includes(suite.name) : suite.default === false) continue;
      ctx.suite = suite.name;
      try {
        await suite.run(ctx);
      } catch (err) {
        if (err instanceof UsageError) throw err;
        const record: CaseRecord = { driver: driver.id, suite: suite.name, case: 'suite', status: 'fail', durationMs: 0, reason: `suite aborted: ${describeError(err)}` };
        report.cases.push(record);
        send({ type: 'case-end', record });
        push();
      }
    }
    if (expectations.file.goldenCodes && Object.keys(report.goldenCodes).length > 0) {
      ctx.suite = 'golden';
      await ctx.case('return-codes', (c) => {
        const diffs = expectations.goldenDifferences(report.goldenCodes);
        c.detail('compared', Object.keys(expectations.file.goldenCodes!).filter((k) => k in report.goldenCodes).length);
        if (diffs.length) {
          throw new Error(`return codes changed since drivers/${driver.id}.expect.json was recorded: ${diffs.map((d) => `${d.situation}: ${d.observed}, golden ${d.golden}`).join('; ')} (review, then hsm-harness run --update-golden)`);
        }
      });
    }
    if (token && objectsBefore !== undefined) {
      ctx.suite = 'cleanup';
      const before = objectsBefore;
      const tok = token;
      await ctx.case('objects-restored', (c) => {
        const failures = tok.cleanup();
        const after = tok.countObjects();
        c.detail('before', before);
        c.detail('after', after);
        if (failures.length) throw new Error(`could not destroy ${failures.length} object(s): ${failures.map((f) => f.error).join(', ')}`);
        if (after !== before) throw new Error(`token had ${before} objects before the run and ${after} after`);
      });
    }
  } finally {
    try { token?.close(); } catch { /* module state lost */ }
    send({ type: 'phase', phase: 'stop', timeoutMs: 60_000 });
    await started.stop().catch((err) => send({ type: 'log', line: `stop failed: ${describeError(err)}` }));
  }
  report.durationMs = Math.round(performance.now() - t0);
  push();
}

// Ctrl-C reaches the whole process group; the parent decides what happens to this driver (and cleans up).
process.on('SIGINT', () => { /* the parent will stop us */ });

process.once('message', (req: WorkerRequest) => {
  main(req).then(
    () => { send({ type: 'done' }); process.exit(0); },
    (err) => {
      if (err instanceof UsageError) send({ type: 'usage-error', message: err.message });
      else send({ type: 'fatal', message: describeError(err) });
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
});
