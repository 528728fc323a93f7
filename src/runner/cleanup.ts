/**
 * Releasing what the journal says a driver (or a whole killed run) left: its driver process, servers,
 * directories, containers, and the objects it created on a persistent token. Processes are killed only when
 * their pid still names the process that was journalled (same start time); objects are removed in a
 * separate, time-bounded process (src/runner/cleanup-worker.ts). Every release is written back to the journal.
 */
import { existsSync, rmSync } from 'node:fs';
import { Journal, describeLeftovers, deadRunJournals, hasLeftovers, type DriverLeftovers } from '../journal.js';
import { forkHarness, killIfSame, sameProcessAlive } from '../proc.js';
import { removeContainers } from '../containers/cleanup.js';
import type { CleanupReply, CleanupRequest } from './cleanup-worker.js';

/** Limit for removing a driver's objects after it died: HSM_CLEANUP_TIMEOUT_S, default 60 s. */
export function cleanupTimeoutMs(env: NodeJS.ProcessEnv): number {
  const s = Number(env.HSM_CLEANUP_TIMEOUT_S);
  return s > 0 ? s * 1000 : 60_000;
}

/** Destroy journalled objects of one driver in a child process killed after timeoutMs. */
function removeObjects(req: CleanupRequest, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CleanupReply> {
  return new Promise((resolve) => {
    const all = () => req.tokens.flatMap((t) => t.objects.map((o) => ({ token: t.token, id: o.id })));
    let reply: CleanupReply | undefined;
    const child = forkHarness('runner/cleanup-worker.js', { env, output: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('message', (m: CleanupReply) => {
      reply = m;
    });
    child.on('error', () => undefined);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const error = signal === 'SIGKILL' ? `cleanup did not finish within ${formatSeconds(timeoutMs)}` : `cleanup process died (${signal ?? `exit ${code}`})`;
      resolve(reply ?? { gone: [], failed: all().map((x) => ({ ...x, error })) });
    });
    child.send(req);
  });
}

/** Seconds for messages: never "0 s" for a limit under a second. */
export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${s >= 10 ? Math.round(s) : Number(s.toFixed(s >= 1 ? 1 : 2))} s`;
}

/**
 * Release everything the journal holds for one driver whose process has exited. Returns what is still left
 * (empty when everything is gone). `objects` says whether to remove objects from persistent tokens too
 * (after a crash, timeout or interruption; after a normal end the driver's own cleanup case already tried).
 */
export async function releaseDriver(
  journal: Journal,
  driver: string,
  env: NodeJS.ProcessEnv,
  objects: boolean,
  timeoutMs = cleanupTimeoutMs(env),
): Promise<DriverLeftovers | undefined> {
  let x = journal.read().drivers.get(driver);
  if (!x) return undefined;
  const released = (kind: 'pid' | 'dir' | 'container', value: string) => journal.append({ t: 'released', driver, kind, value });
  // The driver process first (a hung orphan may still hold the token), then its servers.
  for (const p of [...x.workers, ...x.pids]) {
    killIfSame(p.pid, p.start);
    for (let i = 0; i < 40 && sameProcessAlive(p.pid, p.start); i++) await new Promise((r) => setTimeout(r, 50));
    if (!sameProcessAlive(p.pid, p.start)) released('pid', String(p.pid));
  }
  for (const failure of await removeContainers(x.containers)) x.containers = x.containers.filter((c) => c !== failure.id);
  for (const c of x.containers) released('container', c);
  for (const dir of x.dirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* reported as left */
    }
    if (!existsSync(dir)) released('dir', dir);
  }
  x = journal.read().drivers.get(driver)!;
  // A throwaway token lives in the driver's directories or containers: once those are gone, so are its objects.
  if (x.dirs.length === 0 && x.containers.length === 0) {
    for (const t of x.tokens.filter((t) => t.ephemeral)) for (const o of t.objects) journal.append({ t: 'object-gone', driver, token: t.token, id: o.id });
  }
  x = journal.read().drivers.get(driver)!;
  const persistent = x.tokens.filter((t) => !t.ephemeral);
  if (objects && persistent.length) {
    const reply = await removeObjects({ driver, tokens: persistent }, env, timeoutMs);
    for (const g of reply.gone) journal.append({ t: 'object-gone', driver, token: g.token, id: g.id });
    x = journal.read().drivers.get(driver)!;
    x.errors = [...new Set(reply.failed.map((f) => f.error))];
  }
  return hasLeftovers(x) ? x : undefined;
}

export interface CleanupOutcome {
  journal: string;
  removed: boolean;
  left: string[];
}

/**
 * Finish the work of runs that died (kill -9, power loss): for every journal whose run is gone, release each
 * driver's leftovers. A journal is deleted once nothing it names is left.
 */
export async function cleanupDeadRuns(env: NodeJS.ProcessEnv, timeoutMs = cleanupTimeoutMs(env)): Promise<CleanupOutcome[]> {
  const outcomes: CleanupOutcome[] = [];
  for (const file of deadRunJournals(env)) {
    const journal = Journal.at(file);
    const left: string[] = [];
    for (const driver of journal.read().drivers.keys()) {
      const x = await releaseDriver(journal, driver, env, true, timeoutMs);
      if (x) left.push(...leftoverLines(driver, x));
    }
    const removed = left.length === 0;
    if (removed) journal.remove();
    outcomes.push({ journal: file, removed, left });
  }
  return outcomes;
}

export function leftoverLines(driver: string, x: DriverLeftovers): string[] {
  const errors = x.errors ?? [];
  return describeLeftovers(x).map((l) => `${driver}: ${l}${errors.length ? ` (${errors.join('; ')})` : ''}`);
}
