/**
 * A driver's own process. The parent forks one per driver, so a module that segfaults or hangs takes
 * only this process down; the parent turns that into a crash or timeout record and goes on.
 */
import { driverById, loadSuites } from '../registry.js';
import { emptyDriverReport } from '../results.js';
import type { CaseRecord, DriverReport } from '../results.js';
import type { WorkerMessage, WorkerRequest } from './protocol.js';
import { auditExpectations, makeContext } from './context.js';
import { Expectations } from '../expectations.js';
import { Token, liveTokens } from '../pkcs11/token.js';
import { setRunIdentity } from '../pkcs11/run-identity.js';
import { onOwnedResource, ownedResources, releaseAllOwned } from '../proc.js';
import { UsageError, describeError } from '../errors.js';
import { onSecretRegistered, redactFreeText } from '../secrets.js';
import type { DriverTraits, StartedDriver } from '../driver.js';
import { pkcs11Identity } from '../fleet/identity.js';

function send(msg: WorkerMessage): void {
  // Free text that leaves this process is cleaned (secrets masked); structure (statuses, ids, names) never is.
  // After the parent vanished there is nobody to tell.
  if (process.connected) process.send?.(redactFreeText(msg));
}

/** A suite's own code between its cases is bounded like a case: a hang there is a timeout, not a stuck run. */
function setupLimitMs(traits: DriverTraits): number {
  return traits.setupTimeoutMs ?? traits.caseTimeoutMs;
}

let started: StartedDriver | undefined;

/**
 * The parent is gone (IPC disconnect: it exited, crashed or was killed with SIGKILL). Nobody will bound or
 * clean up this process any more, so it does it itself, at once: destroy the objects it created, stop the
 * servers and remove the directories it holds, and exit. Each step is bounded.
 */
async function orphaned(): Promise<void> {
  const hardStop = setTimeout(() => {
    releaseAllOwned();
    process.exit(1);
  }, 20_000);
  hardStop.unref();
  for (const t of liveTokens()) {
    try {
      t.cleanup();
      t.close();
    } catch {
      /* module state lost */
    }
  }
  await Promise.race([started?.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000))]);
  releaseAllOwned();
  process.exit(1);
}

// The parent masks this process's stderr (module messages) in crash records: it must know every secret.
onSecretRegistered((value) => process.send?.({ type: 'secret', value } satisfies WorkerMessage));

async function main(req: WorkerRequest): Promise<void> {
  const driver = await driverById(req.driverId);
  if (!driver) throw new UsageError(`unknown driver "${req.driverId}"`);
  const report: DriverReport = emptyDriverReport(driver.id, driver.title, driver.kind);
  report.available = true;
  report.status = 'ran';
  report.startedAt = new Date().toISOString();
  const t0 = performance.now();
  const expectations = Expectations.forDriver(driver.id);
  // HSM_CASE_TIMEOUT_S lets an operator tighten (or, for slow cards, widen) the per-case limit.
  const override = Number(process.env.HSM_CASE_TIMEOUT_S);
  const traits = override > 0 ? { ...driver.traits, caseTimeoutMs: override * 1000, setupTimeoutMs: override * 1000 } : driver.traits;
  const push = () => send({ type: 'report', report });
  // Every object a Token creates is journalled by the parent before the creating call.
  setRunIdentity(Buffer.from(req.runPrefix, 'hex'), {
    creating: (token, id, label) => send({ type: 'journal', entry: { t: 'object', token, id, label } }),
    gone: (token, id) => send({ type: 'journal', entry: { t: 'object-gone', token, id } }),
  });
  // Servers and directories reach the parent as soon as they exist, not only after start() returned.
  onOwnedResource((o) => send({ type: 'resources', resources: { pids: o.pids, dirs: o.dirs } }));

  send({ type: 'phase', phase: 'start', timeoutMs: override > 0 ? traits.caseTimeoutMs : Math.max(traits.caseTimeoutMs, traits.startTimeoutMs ?? 180_000) });
  try {
    started = await driver.start(process.env, {
      hold: (resources) => send({ type: 'resources', resources }),
      log: (line) => send({ type: 'log', line }),
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    report.status = 'error';
    report.statusReason = `driver start failed: ${describeError(err)}`;
    report.cases.push({ driver: driver.id, suite: 'driver', case: 'start', status: 'fail', durationMs: 0, reason: report.statusReason });
    push();
    return;
  }
  const startedDriver = started;
  const own = ownedResources();
  const held = started.resources;
  send({ type: 'resources', resources: { ...held, pids: [...held.pids, ...own.pids], dirs: [...held.dirs, ...own.dirs] } });
  Object.assign(report.info, started.info ?? {});

  let token: Token | undefined;
  let objectsBefore: number | undefined;
  const pk = started.connections.pkcs11;
  try {
    send({ type: 'phase', phase: 'open', timeoutMs: setupLimitMs(traits) });
    if (pk) {
      Object.assign(process.env, pk.env);
      token = Token.open(pk.modulePath, pk.token, pk.pin);
      send({ type: 'journal', entry: { t: 'token', token: token.identity, ephemeral: traits.ephemeral } });
      token.login();
      objectsBefore = token.countObjects();
      report.identity = pkcs11Identity(pk.modulePath, token);
    }
    const ctx = makeContext({
      driverId: driver.id,
      traits,
      env: process.env,
      connections: started.connections,
      token,
      report,
      expectations,
      options: req.options,
      events: {
        onCaseStart: (suite, name, timeoutMs) => send({ type: 'case-start', suite, case: name, timeoutMs }),
        onCaseEnd: (record: CaseRecord) => {
          send({ type: 'case-end', record });
          push();
        },
        log: (line) => send({ type: 'log', line }),
        onTempDir: (path, held) => {
          const res = startedDriver.resources;
          res.dirs = held ? [...res.dirs.filter((d) => d !== path), path] : res.dirs.filter((d) => d !== path);
          send({ type: 'resources', resources: res });
        },
      },
    });
    const wanted = req.suites;
    for (const suite of await loadSuites()) {
      if (!started.connections[suite.needs]) continue;
      if (wanted ? !wanted.includes(suite.name) : suite.default === false) continue;
      ctx.suite = suite.name;
      send({ type: 'phase', phase: 'setup', suite: suite.name, timeoutMs: setupLimitMs(traits) });
      try {
        await suite.run(ctx);
      } catch (err) {
        if (err instanceof UsageError) throw err;
        const record: CaseRecord = {
          driver: driver.id,
          suite: suite.name,
          case: 'suite',
          status: 'fail',
          durationMs: 0,
          reason: `suite aborted: ${describeError(err)}`,
        };
        report.cases.push(record);
        send({ type: 'case-end', record });
        push();
      }
    }
    await auditExpectations(ctx, expectations, { ci: !!process.env.CI, updateGolden: req.options.updateGolden === true });
    if (expectations.file.goldenCodes && Object.keys(report.goldenCodes).length > 0) {
      ctx.suite = 'golden';
      send({ type: 'phase', phase: 'golden', timeoutMs: setupLimitMs(traits) });
      await ctx.case('return-codes', (c) => {
        const diffs = expectations.goldenDifferences(report.goldenCodes);
        c.detail('compared', Object.keys(expectations.file.goldenCodes!).filter((k) => k in report.goldenCodes).length);
        if (diffs.length) {
          throw new Error(
            `return codes changed since drivers/${driver.id}.expect.json was recorded: ${diffs.map((d) => `${d.situation}: ${d.observed}, golden ${d.golden}`).join('; ')} (review, then hsm-harness run --update-golden)`,
          );
        }
      });
    }
    if (token && objectsBefore !== undefined) {
      ctx.suite = 'cleanup';
      send({ type: 'phase', phase: 'cleanup', timeoutMs: setupLimitMs(traits) });
      const before = objectsBefore;
      const tok = token;
      await ctx.case('objects-restored', (c) => {
        const failures = tok.cleanup();
        const after = tok.countObjects();
        c.detail('before', before);
        c.detail('after', after);
        if (tok.reconnects) c.detail('sessionsReopened', tok.reconnects);
        if (failures.length)
          throw new Error(`could not destroy ${failures.length} object(s): ${failures.map((f) => `CKA_ID ${f.id ?? '?'}: ${f.error}`).join(', ')}`);
        if (after !== before) throw new Error(`token had ${before} objects before the run and ${after} after`);
      });
    }
  } finally {
    send({ type: 'phase', phase: 'stop', timeoutMs: 60_000 });
    try {
      token?.close();
    } catch {
      /* module state lost */
    }
    await started.stop().catch((err) => send({ type: 'log', line: `stop failed: ${describeError(err)}` }));
  }
  report.durationMs = Math.round(performance.now() - t0);
  push();
}

// Ctrl-C reaches the whole process group; the parent decides what happens to this driver (and cleans up).
process.on('SIGINT', () => {
  /* the parent will stop us */
});
process.once('disconnect', () => {
  void orphaned();
});

process.once('message', (req: WorkerRequest) => {
  main(req).then(
    () => {
      send({ type: 'done' });
      process.exit(0);
    },
    (err) => {
      if (err instanceof UsageError) send({ type: 'usage-error', message: err.message });
      else send({ type: 'fatal', message: describeError(err) });
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
});
