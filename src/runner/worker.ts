/**
 * A driver's own process. The parent forks one per driver, so a module that segfaults or hangs takes
 * only this process down; the parent turns that into a crash or timeout record and goes on.
 */
import { driverById, loadSuites } from '../registry.js';
import { emptyDriverReport } from '../results.js';
import type { CaseRecord, DriverReport } from '../results.js';
import type { WorkerMessage, WorkerRequest } from './protocol.js';
import { makeContext } from './context.js';
import { CaseSelection, runCaseTable } from './cases.js';
import { limitsFor } from './limits.js';
import { Expectations } from '../expectations.js';
import type { Suite } from '../suite.js';
import { Token, liveTokens } from '../pkcs11/token.js';
import { setRunIdentity } from '../pkcs11/run-identity.js';
import { trimPadded } from '../pkcs11/module.js';
import { killRunningTools, releaseAllHeld } from '../proc.js';
import { forwardLedger } from '../ledger.js';
import { UsageError, describeError } from '../errors.js';
import { addStructuralWords, onSecretRegistered, redactFreeText } from '../secrets.js';
import { loadReportWords } from '../report-words.js';
import type { StartedDriver } from '../driver.js';
import { pkcs11Identity } from '../fleet/identity.js';
import { markHiddenCapabilities, recordTransport } from '../pkcs11/transport.js';

function send(msg: WorkerMessage): void {
  // Free text that leaves this process is cleaned (secrets masked); structure (statuses, ids, names) never is.
  // After the parent vanished there is nobody to tell.
  if (process.connected) process.send?.(redactFreeText(msg));
}

let started: StartedDriver | undefined;

/**
 * The parent is gone (IPC disconnect: it exited, crashed or was killed with SIGKILL). Nobody will bound or
 * clean up this process any more, so it does it itself, at once: destroy the objects it created, stop the
 * servers and remove the directories it holds, and exit. Each step is bounded.
 */
async function orphaned(): Promise<void> {
  const hardStop = setTimeout(() => {
    releaseAllHeld();
    process.exit(1);
  }, 20_000);
  hardStop.unref();
  // First the tools it started (a signer writing keys): nothing may write to the token while its objects are removed.
  await killRunningTools();
  for (const t of liveTokens()) {
    try {
      t.objects.cleanup();
      t.close();
    } catch {
      /* module state lost */
    }
  }
  await Promise.race([started?.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000))]);
  releaseAllHeld();
  process.exit(1);
}

// The parent masks this process's stderr (module messages) in crash records: it must know every secret.
onSecretRegistered((value) => process.send?.({ type: 'secret', value } satisfies WorkerMessage));

async function main(req: WorkerRequest): Promise<void> {
  await loadReportWords();
  const driver = await driverById(req.driverId);
  if (!driver) throw new UsageError(`unknown driver "${req.driverId}"`);
  const report: DriverReport = emptyDriverReport(driver.id, driver.title, driver.kind);
  report.available = true;
  report.status = 'ran';
  report.startedAt = new Date().toISOString();
  const t0 = performance.now();
  const expectations = Expectations.forDriver(driver.id);
  const traits = driver.traits;
  const limits = limitsFor(traits, process.env);
  const push = () => send({ type: 'report', report });
  setRunIdentity(Buffer.from(req.runPrefix, 'hex'));
  // Everything this process must clean up (servers, directories, containers, objects) reaches the parent's journal
  // as soon as it is recorded, before it is used: not only after start() returned.
  forwardLedger((change) => send({ type: 'ledger', change }));

  send({ type: 'phase', phase: 'start', timeoutMs: limits.startMs });
  try {
    started = await driver.start(process.env, { log: (line) => send({ type: 'log', line }) });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    report.status = 'error';
    report.statusReason = `driver start failed: ${describeError(err)}`;
    report.cases.push({ driver: driver.id, suite: 'driver', case: 'start', status: 'fail', durationMs: 0, reason: report.statusReason });
    push();
    return;
  }
  Object.assign(report.info, started.info ?? {});

  const suites = await loadSuites();
  const selection = req.cases ? new CaseSelection(suites, req.cases) : undefined;
  let token: Token | undefined;
  let objectsBefore: number | undefined;
  const pk = started.connections.pkcs11;
  try {
    send({ type: 'phase', phase: 'open', timeoutMs: limits.setupMs });
    if (pk) {
      Object.assign(process.env, pk.env);
      token = Token.open(pk.modulePath, pk.token, pk.pin);
      // The token's label, manufacturer and model reach every report as they are ("SoftHSM project").
      const info = token.tokenInfo();
      const clash = addStructuralWords(...[info.label, info.manufacturerID, info.model].map((v) => trimPadded(v)));
      if (clash) throw new UsageError(`a PIN or password of this run ${clash}; choose a longer, less common PIN or password`);
      token.login();
      objectsBefore = token.countObjects();
      report.identity = pkcs11Identity(pk.modulePath, token);
      if (pk.transport) await recordTransport(pk.transport, token, report);
    }
    const ctx = makeContext({
      driverId: driver.id,
      traits,
      limits,
      env: process.env,
      connections: started.connections,
      token,
      report,
      expectations,
      options: req.options,
      run: { expectations, objectsBefore, ci: !!process.env.CI, tableCases: tableCaseIds(suites) },
      events: {
        onCaseStart: (suite, name, timeoutMs) => send({ type: 'case-start', suite, case: name, timeoutMs }),
        onCaseEnd: (record: CaseRecord) => {
          send({ type: 'case-end', record });
          push();
        },
        log: (line) => send({ type: 'log', line }),
      },
    });
    for (const suite of suites) {
      if (suite.needs && !started.connections[suite.needs]) continue;
      if (!suite.always && !(selection ? selection.runs(suite) : req.suites ? req.suites.includes(suite.name) : suite.default !== false)) continue;
      ctx.suite = suite.name;
      send({ type: 'phase', phase: 'setup', suite: suite.name, timeoutMs: limits.setupMs });
      try {
        await runCaseTable(ctx, suite, suites, selection);
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
    // What a transport hides, for every capability the suites recorded (suitability did it for its own verdicts).
    markHiddenCapabilities(report);
  } finally {
    send({ type: 'phase', phase: 'stop', timeoutMs: limits.stopMs });
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

/** Every case of every suite, 'suite/case' (the expectations audit tells a case not run from a typo). */
function tableCaseIds(suites: readonly Suite[]): Set<string> {
  return new Set(suites.flatMap((s) => s.cases.map((c) => `${s.name}/${c.name}`)));
}
