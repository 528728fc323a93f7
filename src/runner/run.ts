/**
 * The matrix runner: probe every selected driver, run each available one in its own process, collect
 * one DriverReport per driver. A crash or a hang in a driver becomes a record for that driver and the
 * rest of the matrix completes.
 */
import { fork } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drivers as allDrivers, driverById } from '../../drivers/index.js';
import { emptyDriverReport, summarise } from '../results.js';
import type { CaseRecord, DriverReport, RunResults } from '../results.js';
import type { Driver, DriverResources } from '../driver.js';
import type { WorkerMessage, WorkerRequest } from './protocol.js';
import { UsageError, describeError } from '../errors.js';
import { projectRoot, toolVersion } from '../paths.js';
import { killTree } from '../proc.js';
import type { Progress } from './progress.js';
import { cleanText, rememberSecret } from '../secrets.js';

export interface RunOptions {
  driverIds?: string[];
  suites?: string[];
  progress: Progress;
  env?: NodeJS.ProcessEnv;
  /** Passed to every suite as ctx.options. */
  options?: Record<string, unknown>;
}

/** The built worker; tests running from src/ use the build in dist/ (npm test builds first). */
function workerPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return join(here, '..', 'worker.js');
  const built = join(projectRoot(), 'dist', 'src', 'runner', 'worker.js');
  if (!existsSync(built)) throw new Error('dist/ is missing: run npm run build first');
  return built;
}

/**
 * Driver processes running now, with what they hold. On Ctrl-C or SIGTERM (a cancelled CI job) the parent
 * kills them and releases their servers and temporary tokens itself, then exits without writing reports,
 * so the previous complete reports stay in place.
 */
const live = new Map<number, { kill: () => void; resources: () => DriverResources }>();
let signalHandlersInstalled = false;

function installSignalHandlers(): void {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      for (const entry of live.values()) {
        entry.kill();
        releaseResources(entry.resources());
      }
      process.stderr.write(`\nhsm-harness: interrupted (${signal}); driver processes stopped, no report written\n`);
      process.exit(code);
    });
  }
}

export function selectDrivers(ids: string[] | undefined): Driver[] {
  if (!ids || ids.length === 0) return allDrivers;
  return ids.map((id) => {
    const d = driverById(id);
    if (!d) throw new UsageError(`unknown driver "${id}"; known drivers: ${allDrivers.map((x) => x.id).join(', ')} (see: hsm-harness drivers)`);
    return d;
  });
}

export async function runMatrix(opts: RunOptions): Promise<RunResults> {
  const env = opts.env ?? process.env;
  const startedAt = new Date().toISOString();
  const caseTimeout = env.HSM_CASE_TIMEOUT_S;
  if (caseTimeout !== undefined && caseTimeout !== '' && !(/^\d+(\.\d+)?$/.test(caseTimeout) && Number(caseTimeout) > 0)) {
    throw new UsageError(`HSM_CASE_TIMEOUT_S must be a number of seconds greater than 0, got "${caseTimeout}"; unset it to use each driver's own limit`);
  }
  const selected = selectDrivers(opts.driverIds);
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
  const reports: DriverReport[] = [];
  for (const { driver, availability } of probes) {
    if (!availability.ok) {
      const r = emptyDriverReport(driver.id, driver.title, driver.kind);
      r.availabilityReason = availability.reason;
      opts.progress.unavailable(driver.id, availability.reason);
      reports.push(r);
      continue;
    }
    const r = await runDriverProcess(driver, opts.suites ?? null, env, opts.progress, opts.options ?? {});
    r.available = true;
    r.availabilityReason = availability.reason;
    reports.push(r);
  }
  return {
    schemaVersion: 1,
    tool: { name: 'hsm-harness', version: toolVersion() },
    startedAt, finishedAt: new Date().toISOString(),
    environment: { node: process.version, platform: process.platform, arch: process.arch, hostname: hostname(), ci: !!env.CI },
    drivers: reports,
    summary: summarise(reports),
  };
}

function runDriverProcess(driver: Driver, suites: string[] | null, env: NodeJS.ProcessEnv, progress: Progress, options: Record<string, unknown>): Promise<DriverReport> {
  return new Promise((resolve, reject) => {
    // pkcs11js async calls run on the libuv pool: size it for 8 in-flight operations plus file I/O.
    const childEnv = { ...env, UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE ?? '16' };
    installSignalHandlers();
    const child = fork(workerPath(), [], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
    live.set(child.pid!, { kill: () => child.kill('SIGKILL'), resources: () => resources });
    let report: DriverReport = emptyDriverReport(driver.id, driver.title, driver.kind);
    let resources: DriverResources = { pids: [], dirs: [] };
    let current: { suite: string; case: string } | null = null;
    let phase = 'start';
    let done = false;
    let usageError: string | null = null;
    let fatal: string | null = null;
    let killedFor: { status: 'timeout'; reason: string } | null = null;
    let timer: NodeJS.Timeout | undefined;
    let stderrTail = '';
    const t0 = performance.now();

    const arm = (ms: number, what: string) => {
      if (timer) clearTimeout(timer);
      if (ms <= 0) return;
      timer = setTimeout(() => {
        killedFor = { status: 'timeout', reason: `${what} did not finish within ${Math.round(ms / 1000)} s; the driver's process was killed` };
        child.kill('SIGKILL');
      }, ms);
    };
    arm(driver.traits.caseTimeoutMs + 180_000, 'driver start');
    progress.driverStart(driver.id);

    child.stdout?.on('data', () => { /* modules may print; not part of the results */ });
    child.stderr?.on('data', (d: Buffer) => { stderrTail = (stderrTail + d.toString()).slice(-8000); });
    child.on('message', (msg: WorkerMessage) => {
      switch (msg.type) {
        case 'phase': phase = msg.phase; arm(msg.timeoutMs, `driver ${msg.phase}`); break;
        case 'resources': resources = msg.resources; break;
        case 'case-start': current = { suite: msg.suite, case: msg.case }; arm(msg.timeoutMs, `case ${msg.suite}/${msg.case}`); progress.caseStart(driver.id, msg.suite, msg.case); break;
        case 'case-end': current = null; arm(0, ''); progress.caseEnd(msg.record); break;
        case 'report': report = msg.report; break;
        case 'log': progress.log(driver.id, msg.line); break;
        case 'usage-error': usageError = msg.message; break;
        case 'fatal': fatal = msg.message; break;
        case 'done': done = true; break;
        case 'secret': rememberSecret(msg.value); break;
      }
    });
    child.on('error', (err) => { if (timer) clearTimeout(timer); reject(err); });
    child.on('exit', (code, signal) => {
      live.delete(child.pid!);
      if (timer) clearTimeout(timer);
      if (usageError) {
        releaseResources(resources);
        reject(new UsageError(usageError));
        return;
      }
      if (!done) {
        const status = killedFor ? 'timeout' : fatal ? 'fail' : 'crash';
        const where = current ? `case ${current.suite}/${current.case}` : `driver ${phase}`;
        const how = killedFor ? killedFor.reason : fatal ? `harness error during ${where}: ${fatal}` : `the driver's process died (${signal ?? `exit code ${code}`}) during ${where}`;
        // Module stderr is free text from outside: secrets masked, control characters escaped, kept short.
        const lastErr = cleanText(stderrTail.trim().split('\n').pop() ?? '', true).slice(0, 500);
        const record: CaseRecord = {
          driver: driver.id, suite: current?.suite ?? 'driver', case: current?.case ?? phase, status,
          durationMs: 0, reason: killedFor || !lastErr ? how : `${how}; last stderr line: ${lastErr}`,
        };
        report.cases.push(record);
        report.status = status === 'fail' ? 'error' : status;
        report.statusReason = how;
        progress.caseEnd(record);
        releaseResources(resources);
      }
      report.durationMs ??= Math.round(performance.now() - t0);
      progress.driverEnd(report);
      resolve(report);
    });
    const req: WorkerRequest = { driverId: driver.id, suites, options };
    child.send(req);
  });
}

/** After a crash or timeout the driver could not stop itself: kill what it started, remove its files. */
function releaseResources(res: DriverResources): void {
  for (const pid of res.pids) killTree(pid);
  for (const dir of res.dirs) { try { rmSync(dir, { recursive: true, force: true }); } catch { /* leave it */ } }
}
