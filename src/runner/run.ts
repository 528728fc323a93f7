/**
 * The matrix runner: probe every selected driver, run each available one in its own process, collect
 * one DriverReport per driver. A crash or a hang in a driver becomes a record for that driver and the
 * rest of the matrix completes.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { loadDrivers } from '../registry.js';
import { loadReportWords } from '../report-words.js';
import { RESULTS_SCHEMA_VERSION, emptyDriverReport, summarise } from '../results.js';
import { completeIdentity, hashKnownSerials, runIdentity } from '../fleet/identity.js';
import type { CaseRecord, DriverReport, RunLeftovers, RunResults } from '../results.js';
import type { Driver } from '../driver.js';
import type { Phase, WorkerMessage, WorkerRequest } from './protocol.js';
import { UsageError, describeError } from '../errors.js';
import { toolVersion } from '../paths.js';
import { RUN_PREFIX_BYTES } from '../pkcs11/marks.js';
import { StderrTail, forkHarness } from '../proc.js';
import { Journal, hasLeftovers, stateDir } from '../journal.js';
import { DriverLedger } from '../ledger.js';
import { cleanupDeadRuns, formatSeconds, leftoverLines, releaseDriver } from './cleanup.js';
import type { Progress } from './progress.js';
import { caseTimeoutOverrideMs, limitsFor } from './limits.js';
import { rememberSecret } from '../secrets.js';

export interface RunOptions {
  driverIds?: string[];
  suites?: string[];
  /** --case patterns (src/runner/cases.ts): only the matching cases and what they need run. */
  cases?: string[];
  progress: Progress;
  env?: NodeJS.ProcessEnv;
  /** Passed to every suite as ctx.options. */
  options?: Record<string, unknown>;
}

/**
 * Driver processes running now, with what they hold. On Ctrl-C or SIGTERM (a cancelled CI job) the parent
 * kills them and releases their servers and temporary tokens itself, then exits without writing reports,
 * so the previous complete reports stay in place.
 */
const live = new Map<number, { kill: () => void; driver: string; journal: Journal; env: NodeJS.ProcessEnv; startedHere: Set<number> }>();
let signalHandlersInstalled = false;
/** The journal of the run in progress, removed on Ctrl-C when nothing it lists is left. */
let runJournal: Journal | undefined;

function installSignalHandlers(): void {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      const entries = [...live.values()];
      for (const entry of entries) entry.kill();
      // Servers, directories and the objects the interrupted driver created; each step is bounded.
      const release = (e: (typeof entries)[number]) => releaseDriver(e.journal, e.driver, e.env, true, { startedHere: e.startedHere }).catch(() => undefined);
      void Promise.all(entries.map(release)).then((left) => {
        const lines = left.flatMap((x, i) => (x ? leftoverLines(entries[i]!.driver, x) : []));
        const journal = runJournal;
        if (journal && [...journal.read().drivers.values()].every((d) => !hasLeftovers(d))) journal.remove();
        const note = lines.length ? `; left behind (journal ${journal?.file}, run hsm-harness cleanup): ${lines.join('; ')}` : '';
        process.stderr.write(`\nhsm-harness: interrupted (${signal}); driver processes stopped, no report written${note}\n`);
        process.exit(code);
      });
    });
  }
}

export async function selectDrivers(ids: string[] | undefined): Promise<Driver[]> {
  const allDrivers = await loadDrivers();
  if (!ids || ids.length === 0) return allDrivers;
  return ids.map((id) => {
    const d = allDrivers.find((x) => x.id === id);
    if (!d) throw new UsageError(`unknown driver "${id}"; known drivers: ${allDrivers.map((x) => x.id).join(', ')} (see: hsm-harness drivers)`);
    return d;
  });
}

export async function runMatrix(opts: RunOptions): Promise<RunResults> {
  const env = opts.env ?? process.env;
  const startedAt = new Date().toISOString();
  caseTimeoutOverrideMs(env);
  const selected = await selectDrivers(opts.driverIds);
  // Before any probe reads a secret: a PIN equal to a word the reports contain is refused (src/report-words.ts).
  await loadReportWords();
  // Probe everything first, so that bad input (a malformed URI, a missing module) stops the run before
  // any driver has started and before any report exists.
  const probes = [];
  for (const d of selected) {
    try {
      probes.push({ driver: d, availability: await d.probe(env) });
    } catch (err) {
      if (err instanceof UsageError) throw err;
      probes.push({ driver: d, availability: { ok: false, reason: `probe failed: ${describeError(err)}` } });
    }
  }
  // The journal lives outside every driver process; leftovers of runs that were killed are removed first.
  // The run's CKA_ID prefix is its first line, so that cleanup can tell this run's objects from any other.
  const runPrefix = randomBytes(RUN_PREFIX_BYTES).toString('hex');
  let journal: Journal;
  try {
    journal = Journal.create(`${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}-${randomBytes(4).toString('hex')}`, runPrefix, env);
  } catch (err) {
    throw new UsageError(`cannot write the run journal under ${stateDir(env)}: ${(err as Error).message}; set HSM_HARNESS_STATE_DIR to a writable directory`);
  }
  runJournal = journal;
  installSignalHandlers();
  const earlier = await cleanupDeadRuns(env);
  const reports: DriverReport[] = [];
  for (const { driver, availability } of probes) {
    if (!availability.ok) {
      const r = emptyDriverReport(driver.id, driver.title, driver.kind);
      r.availabilityReason = availability.reason;
      opts.progress.unavailable(driver.id, availability.reason);
      reports.push(r);
      continue;
    }
    const r = await runDriverProcess(
      driver,
      { suites: opts.suites ?? null, cases: opts.cases ?? null },
      { ...env, ...availability.env },
      opts.progress,
      opts.options ?? {},
      journal,
      runPrefix,
    );
    r.available = true;
    r.availabilityReason = availability.reason;
    completeIdentity(r, env);
    reports.push(r);
  }
  journal.append({ t: 'end' });
  const stillLeft = [...journal.read().drivers.entries()].filter(([, x]) => hasLeftovers(x));
  if (stillLeft.length === 0) journal.remove();
  const leftovers: RunLeftovers = {
    journal: stillLeft.length ? journal.file : undefined,
    left: stillLeft.flatMap(([d, x]) => leftoverLines(d, x)),
    fromEarlierRuns: earlier.map((e) => ({ journal: e.journal, removed: e.removed, left: e.left, ...(e.ignored.length ? { ignored: e.ignored } : {}) })),
  };
  return {
    schemaVersion: RESULTS_SCHEMA_VERSION,
    tool: { name: 'hsm-harness', version: toolVersion() },
    startedAt,
    finishedAt: new Date().toISOString(),
    environment: { node: process.version, platform: process.platform, arch: process.arch, hostname: hostname(), ci: !!env.CI },
    identity: runIdentity(env),
    drivers: reports,
    summary: summarise(reports),
    ...(leftovers.left.length || leftovers.fromEarlierRuns.length ? { leftovers: hashKnownSerials(leftovers) } : {}),
  };
}

function runDriverProcess(
  driver: Driver,
  selected: Pick<WorkerRequest, 'suites' | 'cases'>,
  env: NodeJS.ProcessEnv,
  progress: Progress,
  options: Record<string, unknown>,
  journal: Journal,
  runPrefix: string,
): Promise<DriverReport> {
  return new Promise((resolve, reject) => {
    // pkcs11js async calls run on the libuv pool: size it for 8 in-flight operations plus file I/O.
    const childEnv = { ...env, UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE ?? '16' };
    installSignalHandlers();
    const child = forkHarness('runner/worker.js', { env: childEnv, output: 'pipe' });
    // What the worker holds, written to the journal once each as the worker forwards its ledger.
    const ledger = new DriverLedger((change) => journal.record(driver.id, driver.traits.ephemeral, change));
    ledger.apply({ held: true, entry: { t: 'worker', pid: child.pid! } });
    live.set(child.pid!, { kill: () => child.kill('SIGKILL'), driver: driver.id, journal, env, startedHere: ledger.pids });
    let report: DriverReport = emptyDriverReport(driver.id, driver.title, driver.kind);
    let current: { suite: string; case: string } | null = null;
    let phase: { phase: Phase; suite?: string; after?: string } = { phase: 'start' };
    let done = false;
    let usageError: string | null = null;
    let fatal: string | null = null;
    let killedFor: { status: 'timeout'; reason: string } | null = null;
    let timer: NodeJS.Timeout | undefined;
    const stderrTail = new StderrTail();
    const t0 = performance.now();
    const limits = limitsFor(driver.traits, env);

    // The watchdog is re-armed at every message that changes what the worker is doing, and never disarmed:
    // whatever the worker does next (a case, a suite's setup, cleanup, stop) has a limit.
    const arm = (ms: number, what: string) => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        killedFor = { status: 'timeout', reason: `${what} did not finish within ${formatSeconds(ms)}; the driver's process was killed` };
        child.kill('SIGKILL');
      }, ms);
    };
    const describePhase = () =>
      phase.phase === 'setup'
        ? `suite ${phase.suite} outside its cases (${phase.after ? `after case ${phase.after}` : 'setup, before its first case'})`
        : `driver ${phase.phase}`;
    arm(limits.startMs, 'driver start');
    progress.driverStart(driver.id);

    child.stdout?.on('data', () => {
      /* modules may print; not part of the results */
    });
    child.stderr?.on('data', (d: Buffer) => stderrTail.push(d));
    child.on('message', (msg: WorkerMessage) => {
      switch (msg.type) {
        case 'phase':
          phase = { phase: msg.phase, suite: msg.suite };
          arm(msg.timeoutMs, describePhase());
          break;
        case 'ledger':
          ledger.apply(msg.change);
          break;
        case 'case-start':
          current = { suite: msg.suite, case: msg.case };
          arm(msg.timeoutMs, `case ${msg.suite}/${msg.case}`);
          progress.caseStart(driver.id, msg.suite, msg.case);
          break;
        case 'case-end':
          current = null;
          if (phase.phase === 'setup') phase = { ...phase, after: msg.record.case };
          arm(limits.setupMs, describePhase());
          progress.caseEnd(msg.record);
          break;
        case 'report':
          report = msg.report;
          break;
        case 'log':
          progress.log(driver.id, msg.line);
          break;
        case 'usage-error':
          usageError = msg.message;
          break;
        case 'fatal':
          fatal = msg.message;
          break;
        case 'done':
          done = true;
          break;
        case 'secret':
          rememberSecret(msg.value);
          break;
      }
    });
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      void (async () => {
        // Whatever the driver did not release itself: servers, directories, containers, and after a crash,
        // timeout or usage error the objects it created on a persistent token.
        const left = await releaseDriver(journal, driver.id, env, !done || usageError !== null, { startedHere: ledger.pids }).catch(() => undefined);
        live.delete(child.pid!);
        const leftNote = left ? `; left behind (journal ${journal.file}, run hsm-harness cleanup): ${leftoverLines(driver.id, left).join('; ')}` : '';
        if (usageError) {
          reject(new UsageError(usageError));
          return;
        }
        if (!done) {
          const status = killedFor ? 'timeout' : fatal ? 'fail' : 'crash';
          const where = current ? `case ${current.suite}/${current.case}` : describePhase();
          const how = killedFor
            ? killedFor.reason
            : fatal
              ? `harness error during ${where}: ${fatal}`
              : `the driver's process died (${signal ?? `exit code ${code}`}) during ${where}`;
          // Module stderr is free text from outside: secrets masked (over whole lines), control characters escaped, kept short.
          const lastErr = stderrTail.lastLine(500);
          const record: CaseRecord = {
            driver: driver.id,
            suite: current?.suite ?? phase.suite ?? 'driver',
            case: current?.case ?? phase.phase,
            status,
            durationMs: 0,
            reason: `${killedFor || !lastErr ? how : `${how}; last stderr line: ${lastErr}`}${leftNote}`,
          };
          report.cases.push(record);
          report.status = status === 'fail' ? 'error' : status;
          report.statusReason = `${how}${leftNote}`;
          progress.caseEnd(record);
        } else if (left) {
          report.findings.push({ driver: driver.id, suite: 'cleanup', kind: 'deviation', text: `the run could not remove everything it created${leftNote}` });
        }
        if (left) report.leftovers = leftoverLines(driver.id, left);
        report.durationMs ??= Math.round(performance.now() - t0);
        progress.driverEnd(report);
        resolve(report);
      })();
    });
    const req: WorkerRequest = { driverId: driver.id, ...selected, options, runPrefix };
    child.send(req);
  });
}
