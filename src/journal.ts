/**
 * The run journal: what a run creates, written by the parent process to a file outside every driver's
 * process, one JSON line per event, before (objects) or as soon as (servers, directories, containers) the
 * thing exists. When a run ends, however it ends, the outstanding entries are cleaned up; a run that was
 * killed (kill -9) leaves its file behind, and the next run or `hsm-harness cleanup` finishes the job.
 *
 * Object entries carry the exact CKA_ID and the token's identity (module path, label, serial), never a PIN:
 * cleanup reads the PIN from the same environment the run had. Only objects whose CKA_ID is journalled and
 * whose label carries the harness prefix are ever destroyed.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { processStartTime, sameProcessAlive } from './proc.js';
import type { TokenIdentity } from './pkcs11/run-identity.js';

export type JournalEntry =
  | { t: 'run'; pid: number; start?: string; startedAt: string }
  | { t: 'worker'; driver: string; pid: number; start?: string }
  | { t: 'pid'; driver: string; pid: number; start?: string }
  | { t: 'dir'; driver: string; path: string }
  | { t: 'container'; driver: string; id: string }
  /** A token a driver's objects live on; ephemeral tokens vanish with the driver's directories. */
  | { t: 'token'; driver: string; token: TokenIdentity; ephemeral: boolean }
  /** Written before the creating call: the object may or may not exist. */
  | { t: 'object'; driver: string; token: TokenIdentity; id: string; label: string }
  | { t: 'object-gone'; driver: string; token: TokenIdentity; id: string }
  | { t: 'released'; driver: string; kind: 'pid' | 'dir' | 'container'; value: string }
  | { t: 'end' };

/** The state directory: HSM_HARNESS_STATE_DIR, else $XDG_STATE_HOME/hsm-harness, else ~/.local/state/hsm-harness. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HSM_HARNESS_STATE_DIR) return env.HSM_HARNESS_STATE_DIR;
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'hsm-harness');
}

export function journalDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), 'runs');
}

const tokenKey = (t: TokenIdentity) => `${t.modulePath}\u0000${t.label}\u0000${t.serial}`;

export class Journal {
  private constructor(readonly file: string) {}

  /** A new journal for this run, created with the run's own pid so that a later cleanup can tell it died. */
  static create(runId: string, env: NodeJS.ProcessEnv = process.env): Journal {
    const dir = journalDir(env);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const j = new Journal(join(dir, `${runId}.jsonl`));
    j.append({ t: 'run', pid: process.pid, start: processStartTime(process.pid), startedAt: new Date().toISOString() });
    return j;
  }

  static at(file: string): Journal {
    return new Journal(file);
  }

  /** Synchronous, so that the entry is on disk before the caller goes on (and before a kill can lose it). */
  append(entry: JournalEntry): void {
    appendFileSync(this.file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
  }

  read(): Outstanding {
    return outstanding(readEntries(this.file));
  }

  remove(): void {
    rmSync(this.file, { force: true });
  }
}

function readEntries(file: string): JournalEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: JournalEntry[] = [];
  // A line cut short by a kill is ignored; every line before it is whole (appends are sequential).
  for (const line of text.split('\n')) {
    if (line.trim()) {
      try {
        out.push(JSON.parse(line) as JournalEntry);
      } catch {
        /* torn */
      }
    }
  }
  return out;
}

export interface TokenObjects {
  token: TokenIdentity;
  ephemeral: boolean;
  objects: { id: string; label: string }[];
}

export interface DriverLeftovers {
  workers: { pid: number; start?: string }[];
  pids: { pid: number; start?: string }[];
  dirs: string[];
  containers: string[];
  tokens: TokenObjects[];
  /** Why objects could not be removed (filled by a cleanup attempt). */
  errors?: string[];
}

export interface Outstanding {
  run?: { pid: number; start?: string; startedAt: string };
  ended: boolean;
  drivers: Map<string, DriverLeftovers>;
}

/** What the entries leave outstanding: created and not yet proven gone or released. */
export function outstanding(entries: JournalEntry[]): Outstanding {
  const result: Outstanding = { ended: false, drivers: new Map() };
  const d = (id: string): DriverLeftovers => {
    let x = result.drivers.get(id);
    if (!x) result.drivers.set(id, (x = { workers: [], pids: [], dirs: [], containers: [], tokens: [] }));
    return x;
  };
  const tokenOf = (driver: string, t: TokenIdentity, ephemeral?: boolean): TokenObjects => {
    const list = d(driver).tokens;
    let e = list.find((x) => tokenKey(x.token) === tokenKey(t));
    if (!e) list.push((e = { token: t, ephemeral: ephemeral ?? false, objects: [] }));
    if (ephemeral !== undefined) e.ephemeral = ephemeral;
    return e;
  };
  for (const e of entries) {
    switch (e.t) {
      case 'run':
        result.run = { pid: e.pid, start: e.start, startedAt: e.startedAt };
        break;
      case 'worker':
        d(e.driver).workers.push({ pid: e.pid, start: e.start });
        break;
      case 'pid':
        if (!d(e.driver).pids.some((p) => p.pid === e.pid)) d(e.driver).pids.push({ pid: e.pid, start: e.start });
        break;
      case 'dir':
        if (!d(e.driver).dirs.includes(e.path)) d(e.driver).dirs.push(e.path);
        break;
      case 'container':
        if (!d(e.driver).containers.includes(e.id)) d(e.driver).containers.push(e.id);
        break;
      case 'token':
        tokenOf(e.driver, e.token, e.ephemeral);
        break;
      case 'object': {
        const t = tokenOf(e.driver, e.token);
        if (!t.objects.some((o) => o.id === e.id)) t.objects.push({ id: e.id, label: e.label });
        break;
      }
      case 'object-gone': {
        const t = tokenOf(e.driver, e.token);
        t.objects = t.objects.filter((o) => o.id !== e.id);
        break;
      }
      case 'released': {
        const x = d(e.driver);
        if (e.kind === 'pid') {
          x.pids = x.pids.filter((p) => String(p.pid) !== e.value);
          x.workers = x.workers.filter((p) => String(p.pid) !== e.value);
        }
        if (e.kind === 'dir') x.dirs = x.dirs.filter((p) => p !== e.value);
        if (e.kind === 'container') x.containers = x.containers.filter((p) => p !== e.value);
        break;
      }
      case 'end':
        result.ended = true;
        break;
    }
  }
  for (const x of result.drivers.values()) x.tokens = x.tokens.filter((t) => t.objects.length > 0);
  return result;
}

/** Whether anything of this driver is still outstanding. */
export function hasLeftovers(x: DriverLeftovers | undefined): boolean {
  return !!x && x.workers.length + x.pids.length + x.dirs.length + x.containers.length + x.tokens.length > 0;
}

/** The journals of runs that are no longer running (their parent process is gone). */
export function deadRunJournals(env: NodeJS.ProcessEnv = process.env): string[] {
  const dir = journalDir(env);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.jsonl'))
    .map((n) => join(dir, n))
    .filter((file) => {
      const o = Journal.at(file).read();
      return !o.run || !sameProcessAlive(o.run.pid, o.run.start);
    });
}

/** One line per kind of leftover, for crash/timeout records and the cleanup command's output. */
export function describeLeftovers(x: DriverLeftovers): string[] {
  const lines: string[] = [];
  for (const t of x.tokens) {
    lines.push(
      `${t.objects.length} object(s) on token "${t.token.label}" (serial ${t.token.serial || '?'}, module ${t.token.modulePath}), ` +
        `CKA_ID ${t.objects.map((o) => o.id).join(', ')}`,
    );
  }
  if (x.pids.length) lines.push(`process(es) ${x.pids.map((p) => p.pid).join(', ')}`);
  if (x.workers.length) lines.push(`driver process(es) ${x.workers.map((p) => p.pid).join(', ')}`);
  if (x.dirs.length) lines.push(`director${x.dirs.length === 1 ? 'y' : 'ies'} ${x.dirs.join(', ')}`);
  if (x.containers.length) lines.push(`container(s) ${x.containers.join(', ')}`);
  return lines;
}
