/**
 * Releasing what the journal says a driver (or a whole killed run) left: its driver process, servers,
 * directories, containers, and the objects it created on a persistent token. Nothing is taken on the
 * journal's word alone (src/journal.ts checks every line): processes are killed only when their pid still
 * names the process that was journalled (same start time and command line); a directory is removed only
 * when it is still a real directory of this user named as makeTempDir names them; objects are removed in a
 * separate, time-bounded process (src/runner/cleanup-worker.ts) that checks both marks on the token.
 * Every release is written back to the journal.
 */
import { existsSync, rmSync } from 'node:fs';
import { harnessTempDirNow } from '../fsutil.js';
import { driverById, importFromTree } from '../registry.js';
import {
  Journal,
  describeLeftovers,
  deadRunJournals,
  hasLeftovers,
  isJournalFile,
  type DriverLeftovers,
  type SignerKey,
  type TokenObjects,
} from '../journal.js';
import { describeError } from '../errors.js';
import { forkHarness, killIfSame, processCmdline, sameProcessAlive } from '../proc.js';
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
    const all = () =>
      req.tokens.flatMap((t) => [
        ...t.objects.map((o) => ({ token: t.token, id: o.id })),
        ...t.signers.map((x) => ({ token: t.token, id: `keys of ${x.signer}` })),
      ]);
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
  opts: {
    timeoutMs?: number;
    /** Where lines about entries that were not acted on go (reported once by the caller). */
    notes?: string[];
    /**
     * Pids this very process started or was told of in this run. A server may exec another program after it
     * was journalled (p11-kit server does), so for these the start time alone names the process; the command
     * line is checked for pids that only a journal file vouches for.
     */
    startedHere?: ReadonlySet<number>;
  } = {},
): Promise<DriverLeftovers | undefined> {
  const { timeoutMs = cleanupTimeoutMs(env), notes = [], startedHere } = opts;
  let x = journal.read().drivers.get(driver);
  if (!x) return undefined;
  const released = (kind: 'pid' | 'dir' | 'container', value: string) => journal.append({ t: 'released', driver, kind, value });
  // The driver process first (a hung orphan may still hold the token), then its servers.
  for (const p of [...x.workers, ...x.pids]) {
    // The command line journalled, or the one it was journalled to exec into (a signer's daemon behind its launcher).
    const cmdline = startedHere?.has(p.pid) ? undefined : p.becomes && processCmdline(p.pid) === p.becomes ? p.becomes : p.cmdline;
    if (sameProcessAlive(p.pid, p.start) && !sameProcessAlive(p.pid, p.start, cmdline)) {
      notes.push(`${driver}: process ${p.pid} runs another command line than the journalled one: not killed`);
    }
    killIfSame(p.pid, p.start, cmdline);
    for (let i = 0; i < 40 && sameProcessAlive(p.pid, p.start, cmdline); i++) await new Promise((r) => setTimeout(r, 50));
    if (!sameProcessAlive(p.pid, p.start, cmdline)) released('pid', String(p.pid));
  }
  for (const failure of await removeContainers(x.containers)) x.containers = x.containers.filter((c) => c !== failure.id);
  for (const c of x.containers) released('container', c);
  // A throwaway token lives in the driver's directories or containers: once those are gone, so are its objects.
  // Every token of a driver whose tokens are all throwaway is one, even if the journal did not say so.
  const allEphemeral = (await driverById(driver).catch(() => undefined))?.traits.ephemeral === true;
  const persistentTokens = () =>
    journal
      .read()
      .drivers.get(driver)
      ?.tokens.filter((t) => !t.ephemeral && !allEphemeral) ?? [];
  // Objects on a persistent token before the directories: a signer's record of the keys it made is in one of them.
  const errors: string[] = [];
  if (objects && persistentTokens().length) {
    const persistent = persistentTokens();
    errors.push(...(await readSignerKeys(journal, driver, persistent, x.dirs, env, notes)));
    const reply = await removeObjects({ driver, tokens: persistent }, env, timeoutMs);
    for (const g of reply.gone) journal.append({ t: 'object-gone', driver, token: g.token, id: g.id });
    for (const g of reply.labelledGone ?? []) journal.append({ t: 'labelled-gone', driver, token: g.token, prefix: g.prefix });
    for (const g of reply.signerKeysGone ?? []) journal.append({ t: 'signer-keys-gone', driver, token: g.token, dir: g.dir });
    errors.push(...reply.failed.map((f) => f.error));
  }
  // A directory that still holds a signer's record of keys on a persistent token stays until those keys are gone.
  const held = new Set(persistentTokens().flatMap((t) => t.signers.map((s) => s.dir)));
  for (const dir of x.dirs.filter((d) => !held.has(d))) {
    const now = harnessTempDirNow(dir);
    if (now.refused) {
      // Not ours any more (replaced by a symlink, another user's): never removed, reported once.
      notes.push(`${driver}: directory ${dir} ${now.refused}: not removed`);
      released('dir', dir);
      continue;
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* reported as left */
    }
    if (!existsSync(dir)) released('dir', dir);
  }
  x = journal.read().drivers.get(driver)!;
  if (x.dirs.length === 0 && x.containers.length === 0) {
    for (const t of x.tokens.filter((t) => t.ephemeral || allEphemeral)) {
      for (const o of t.objects) journal.append({ t: 'object-gone', driver, token: t.token, id: o.id });
      for (const prefix of t.labelled) journal.append({ t: 'labelled-gone', driver, token: t.token, prefix });
      for (const s of t.signers) journal.append({ t: 'signer-keys-gone', driver, token: t.token, dir: s.dir });
    }
  }
  x = journal.read().drivers.get(driver)!;
  if (errors.length) x.errors = [...new Set(errors)];
  return hasLeftovers(x) ? x : undefined;
}

interface SignerWithKeys {
  id: string;
  keysMadeIn?(dir: string, env: NodeJS.ProcessEnv): Promise<SignerKey[]>;
}

/** Why a journalled signer directory can never tell which keys the signer made, or undefined. */
function unreadable(dir: string, dirs: string[], signer: SignerWithKeys | undefined, id: string): string | undefined {
  if (!dirs.includes(dir)) return 'is not an outstanding directory of this run';
  const now = harnessTempDirNow(dir);
  if (now.refused) return now.refused;
  if (now.gone) return 'is gone';
  if (!signer) return `belongs to a signer this version does not know (${id})`;
  if (!signer.keysMadeIn) return 'belongs to a signer that keeps no record of its keys';
  return undefined;
}

/**
 * Fill in, for each signer journalled on these tokens, the keys it made, read from its own record in its journalled
 * directory (Signer.keysMadeIn: Knot's KASP database, BIND's key files, OpenDNSSEC's database). An entry whose
 * directory is gone, or is not an outstanding directory of this driver, can never be resolved: it is reported once in
 * `notes` and retired. Returns why a record could not be read (its directory then stays, for the next cleanup).
 */
async function readSignerKeys(
  journal: Journal,
  driver: string,
  tokens: TokenObjects[],
  dirs: string[],
  env: NodeJS.ProcessEnv,
  notes: string[],
): Promise<string[]> {
  if (!tokens.some((t) => t.signers.length)) return [];
  const known = (await importFromTree<{ signers: SignerWithKeys[] }>('suites/signers/all')).signers;
  const errors: string[] = [];
  for (const t of tokens) {
    const where = `token "${t.token.label}" (serial ${t.token.serial || '?'})`;
    for (const s of [...t.signers]) {
      const signer = known.find((k) => k.id === s.signer);
      const why = unreadable(s.dir, dirs, signer, s.signer);
      if (why) {
        notes.push(`${driver}: the keys ${s.signer} may have made on ${where} cannot be known: its directory ${s.dir} ${why}; look for them on the token`);
        journal.append({ t: 'signer-keys-gone', driver, token: t.token, dir: s.dir });
        t.signers = t.signers.filter((x) => x !== s);
        continue;
      }
      try {
        s.keys = await signer!.keysMadeIn!(s.dir, env);
      } catch (err) {
        errors.push(`the keys ${s.signer} made could not be read from ${s.dir}: ${describeError(err)}`);
        t.signers = t.signers.filter((x) => x !== s);
      }
    }
  }
  return errors;
}

export interface CleanupOutcome {
  journal: string;
  removed: boolean;
  left: string[];
  /** Journal lines (or whole files) not acted on, with the reason: each is reported once. */
  ignored: string[];
}

/**
 * Finish the work of runs that died (kill -9, power loss): for every journal whose run is gone, release each
 * driver's leftovers. A journal is deleted once nothing it names is left. A line that cannot be trusted is
 * reported in `ignored` and retired; a file that is not a journal at all is reported and left alone.
 */
export async function cleanupDeadRuns(env: NodeJS.ProcessEnv, timeoutMs = cleanupTimeoutMs(env)): Promise<CleanupOutcome[]> {
  const outcomes: CleanupOutcome[] = [];
  for (const file of deadRunJournals(env)) {
    if (!isJournalFile(file)) {
      outcomes.push({ journal: file, removed: false, left: [], ignored: ['is not a regular file, so not a journal: not read; remove it yourself'] });
      continue;
    }
    const journal = Journal.at(file);
    const read = journal.read();
    const ignored = read.refused.map((r) => r.reason);
    if (read.refused.some((r) => r.line === 0)) {
      // The file could not be read at all (permissions, too large): kept for the user to look at.
      outcomes.push({ journal: file, removed: false, left: [], ignored });
      continue;
    }
    journal.retire(read.refused);
    const left: string[] = [];
    for (const driver of read.drivers.keys()) {
      const x = await releaseDriver(journal, driver, env, true, { timeoutMs, notes: ignored });
      if (x) left.push(...leftoverLines(driver, x));
    }
    const removed = left.length === 0;
    if (removed) journal.remove();
    outcomes.push({ journal: file, removed, left, ignored });
  }
  return outcomes;
}

export function leftoverLines(driver: string, x: DriverLeftovers): string[] {
  const errors = x.errors ?? [];
  return describeLeftovers(x).map((l) => `${driver}: ${l}${errors.length ? ` (${errors.join('; ')})` : ''}`);
}
