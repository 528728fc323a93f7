/**
 * The run journal: what a run creates, written by the parent process to a file outside every driver's
 * process, one JSON line per event, before (objects) or as soon as (servers, directories, containers) the
 * thing exists. When a run ends, however it ends, the outstanding entries are cleaned up; a run that was
 * killed (kill -9) leaves its file behind, and the next run or `hsm-harness cleanup` finishes the job.
 *
 * Object entries carry the exact CKA_ID and the token's identity (module path, label, serial), never a PIN:
 * cleanup reads the PIN from the same environment the run had.
 *
 * A journal is a file on disk, so it is never trusted blindly (docs/safety.md, "What cleanup trusts"): every
 * line is checked against what the harness itself writes before anything acts on it. An object's CKA_ID must
 * start with the run's prefix (journalled in the run's first line) and its label with the harness prefix; a
 * directory must be one makeTempDir named; a process must carry its journalled start time and command line.
 * A line that fails a check is reported once, with the reason, and retired; it never stops a run or cleanup.
 */
import { appendFileSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { processCmdline, processStartTime, sameProcessAlive } from './proc.js';
import { notHarnessTempDir } from './fsutil.js';
import { INPUT_LIMITS, readInputFileSync } from './input.js';
import { ID_HEAD_BYTES, LABEL_PREFIX, RUN_PREFIX_BYTES } from './pkcs11/marks.js';
import type { TokenIdentity } from './pkcs11/run-identity.js';
import type { LedgerChange } from './ledger.js';

/** A process as journalled: pid, start time and command line (NUL-separated, as /proc shows it). */
export interface JournalProcess {
  pid: number;
  start?: string;
  cmdline?: string;
  /** The command line it execs into after its launcher (/proc's form: NUL after each argument), when known in advance. */
  becomes?: string;
}

export type JournalEntry =
  | { t: 'run'; pid: number; start?: string; startedAt: string; prefix?: string }
  | ({ t: 'worker'; driver: string } & JournalProcess)
  | ({ t: 'pid'; driver: string } & JournalProcess)
  | { t: 'dir'; driver: string; path: string }
  | { t: 'container'; driver: string; id: string }
  /** A token a driver's objects live on; ephemeral tokens vanish with the driver's directories. */
  | { t: 'token'; driver: string; token: TokenIdentity; ephemeral: boolean }
  /** Written before the creating call: the object may or may not exist. */
  | { t: 'object'; driver: string; token: TokenIdentity; id: string; label: string }
  | { t: 'object-gone'; driver: string; token: TokenIdentity; id: string }
  /**
   * Written before a program the harness does not control (a DNSSEC signer) may create objects on the token: every
   * object whose CKA_LABEL starts with `prefix` is this run's. The prefix embeds the run's CKA_ID prefix in hex
   * (isRunLabelPrefix), so it can name no other run's objects and nothing a person made.
   */
  | { t: 'labelled'; driver: string; token: TokenIdentity; prefix: string }
  | { t: 'labelled-gone'; driver: string; token: TokenIdentity; prefix: string }
  /**
   * Written before a signer that names its keys itself (Knot, BIND, OpenDNSSEC) runs: the keys `signer` makes on the
   * token are the ones its own state in `dir` (a harness temporary directory) records. Cleanup asks the signer for
   * them (Signer.keysMadeIn) before it removes `dir`, and destroys exactly those objects.
   */
  | { t: 'signer-keys'; driver: string; token: TokenIdentity; signer: string; dir: string }
  | { t: 'signer-keys-gone'; driver: string; token: TokenIdentity; dir: string }
  | { t: 'released'; driver: string; kind: 'pid' | 'dir' | 'container'; value: string }
  /** A line (1-based) that was reported as not to be acted on: later reads skip it silently. */
  | { t: 'retired'; line: number; reason: string }
  | { t: 'end' };

/** The journal entry of a process: its pid with the start time and command line that make it this one. */
export function journalProcess(pid: number, becomes?: string[]): JournalProcess {
  return { pid, start: processStartTime(pid), cmdline: processCmdline(pid), ...(becomes ? { becomes: becomes.map((a) => `${a}\u0000`).join('') } : {}) };
}

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
  static create(runId: string, prefix: string, env: NodeJS.ProcessEnv = process.env): Journal {
    const dir = journalDir(env);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const j = new Journal(join(dir, `${runId}.jsonl`));
    j.append({ t: 'run', pid: process.pid, start: processStartTime(process.pid), startedAt: new Date().toISOString(), prefix });
    return j;
  }

  static at(file: string): Journal {
    return new Journal(file);
  }

  /** Synchronous, so that the entry is on disk before the caller goes on (and before a kill can lose it). */
  append(entry: JournalEntry): void {
    appendFileSync(this.file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
  }

  /** Journal what a driver process's ledger recorded (src/ledger.ts DriverLedger). */
  record(driver: string, ephemeral: boolean, change: LedgerChange): void {
    const line = journalLine(driver, ephemeral, change);
    if (line) this.append(line);
  }

  read(): Outstanding {
    return outstanding(readLines(this.file));
  }

  /** Retire the lines read() refused, so that they are reported once. */
  retire(refused: Refused[]): void {
    for (const r of refused) if (r.line > 0) this.append({ t: 'retired', line: r.line, reason: r.reason });
  }

  remove(): void {
    rmSync(this.file, { force: true });
  }
}

/**
 * The line for a ledger change. A process, directory or container let go of gets none: releaseDriver proves it
 * gone itself once the driver's process has exited.
 */
function journalLine(driver: string, ephemeral: boolean, { held, entry: e }: LedgerChange): JournalEntry | undefined {
  if (!held) {
    if (e.t === 'object') return { t: 'object-gone', driver, token: e.token, id: e.id };
    if (e.t === 'labelled') return { t: 'labelled-gone', driver, token: e.token, prefix: e.prefix };
    if (e.t === 'signer-keys') return { t: 'signer-keys-gone', driver, token: e.token, dir: e.dir };
    return undefined;
  }
  switch (e.t) {
    case 'pid':
    case 'worker':
      return { t: e.t, driver, ...journalProcess(e.pid, e.t === 'pid' ? e.becomes : undefined) };
    case 'dir':
      return { t: 'dir', driver, path: e.path };
    case 'container':
      return { t: 'container', driver, id: e.id };
    case 'token':
      return { t: 'token', driver, token: e.token, ephemeral };
    case 'object':
      return { t: 'object', driver, token: e.token, id: e.id, label: e.label };
    case 'labelled':
      return { t: 'labelled', driver, token: e.token, prefix: e.prefix };
    case 'signer-keys':
      return { t: 'signer-keys', driver, token: e.token, signer: e.signer, dir: e.dir };
  }
}

/** A journal line, or why it is not one the harness could have written. */
type Parsed = { line: number; entry: JournalEntry } | { line: number; bad: string };

function readLines(file: string): Parsed[] {
  let text: string;
  try {
    text = readInputFileSync(file, INPUT_LIMITS.journal, 'the run journal').toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || /\(ENOENT\)/.test((err as Error).message)) return [];
    return [{ line: 0, bad: (err as Error).message }];
  }
  const lines = text.split('\n');
  const out: Parsed[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      // The last line may be cut short by a kill (appends are sequential, so every line before it is whole).
      if (i < lines.length - 1 && lines.slice(i + 1).some((l) => l.trim())) out.push({ line: i + 1, bad: 'is not JSON' });
      return;
    }
    const bad = shapeProblem(value);
    out.push(bad ? { line: i + 1, bad } : { line: i + 1, entry: value as JournalEntry });
  });
  return out;
}

/** A container the harness may remove: one it named (hsm-harness-<driver>-<8 hex>) or an engine's container id. */
const CONTAINER_REF = /^(hsm-harness-[a-z0-9-]+-[0-9a-f]{8}|[0-9a-f]{12,64})$/;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';
const isPid = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 1;
const DRIVER_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const SIGNER_ID = /^[a-z0-9]{1,32}$/;
const isToken = (v: unknown) => isRecord(v) && isString(v.modulePath) && isString(v.label) && isString(v.serial);
const optional = (v: unknown) => v === undefined || isString(v);

/** Why a parsed line does not have the shape of an entry the harness writes, or null. */
function shapeProblem(v: unknown): string | null {
  if (!isRecord(v) || !isString(v.t)) return 'is not a journal entry (an object with a "t" field)';
  const driver = () => (isString(v.driver) && DRIVER_ID.test(v.driver) ? null : 'has no valid driver id');
  switch (v.t) {
    case 'run':
      return isPid(v.pid) && optional(v.start) && optional(v.prefix) ? null : 'is a malformed run entry';
    case 'worker':
    case 'pid':
      return driver() ?? (isPid(v.pid) && optional(v.start) && optional(v.cmdline) && optional(v.becomes) ? null : `is a malformed ${v.t} entry`);
    case 'dir':
      return driver() ?? (isString(v.path) ? null : 'is a malformed dir entry');
    case 'container':
      // A container is journalled by the name the harness gave it before creating it (src/containers/start.ts), so an
      // interrupted start can still be removed; an engine's hex id is accepted too. Any other name is not ours.
      return driver() ?? (isString(v.id) && CONTAINER_REF.test(v.id) ? null : 'is a container entry naming neither a harness container nor a container id');
    case 'token':
      return driver() ?? (isToken(v.token) ? null : "is a token entry without the token's identity (module path, label, serial)");
    case 'object':
    case 'object-gone':
      return (
        driver() ??
        (isToken(v.token) && isString(v.id) && (v.t === 'object-gone' || isString(v.label))
          ? null
          : `is a malformed ${v.t} entry (token identity, CKA_ID, label)`)
      );
    case 'labelled':
    case 'labelled-gone':
      return driver() ?? (isToken(v.token) && isString(v.prefix) ? null : `is a malformed ${v.t} entry (token identity, label prefix)`);
    case 'signer-keys':
    case 'signer-keys-gone':
      return (
        driver() ??
        (isToken(v.token) && isString(v.dir) && (v.t === 'signer-keys-gone' || (isString(v.signer) && SIGNER_ID.test(v.signer)))
          ? null
          : `is a malformed ${v.t} entry (token identity, signer, directory)`)
      );
    case 'released':
      return driver() ?? (['pid', 'dir', 'container'].includes(v.kind as string) && isString(v.value) ? null : 'is a malformed released entry');
    case 'retired':
      return Number.isSafeInteger(v.line) ? null : 'is a malformed retired entry';
    case 'end':
      return null;
    default:
      return `has an unknown kind "${String(v.t).slice(0, 20)}"`;
  }
}

/** Why an object entry cannot be one of this run's objects (CKA_ID with the run's prefix, harness label), or null. */
function notOurObject(id: string, label: string, runPrefix: string | undefined): string | null {
  if (!runPrefix || !new RegExp(`^[0-9a-f]{${2 * RUN_PREFIX_BYTES}}$`).test(runPrefix)) return 'the journal names no run CKA_ID prefix';
  if (!/^([0-9a-f]{2})+$/.test(id) || id.length < 2 * ID_HEAD_BYTES) return 'its CKA_ID is not a harness CKA_ID (hex, run prefix and counter)';
  if (!id.startsWith(runPrefix)) return "its CKA_ID does not start with the run's prefix";
  if (!label.startsWith(LABEL_PREFIX)) return `its label does not start with ${LABEL_PREFIX}`;
  return null;
}

export interface TokenObjects {
  token: TokenIdentity;
  ephemeral: boolean;
  objects: { id: string; label: string }[];
  /** Label prefixes (isRunLabelPrefix) under which a signer may have created objects. */
  labelled: string[];
  /** Signers that may have made keys here, and the harness directory that holds their record of them. */
  signers: SignerKeysEntry[];
}

/** A signer's journalled work directory; `keys` is filled by cleanup from the signer's own record (Signer.keysMadeIn). */
export interface SignerKeysEntry {
  signer: string;
  dir: string;
  keys?: SignerKey[];
}

/** A key a signer made, as it names it: CKA_ID in hex and/or CKA_LABEL; an object matches when every field given is equal. */
export interface SignerKey {
  id?: string;
  label?: string;
}

/** A label prefix a journal may name for removal: the harness prefix, the run's 8-byte CKA_ID prefix in hex, a name. */
export function isRunLabelPrefix(prefix: string): boolean {
  return new RegExp(`^${LABEL_PREFIX}[0-9a-f]{${2 * RUN_PREFIX_BYTES}}-[a-z0-9]+-$`).test(prefix);
}

/** Why a labelled entry cannot name this run's objects (the prefix must embed the run's CKA_ID prefix), or null. */
function notOurLabelPrefix(prefix: string, runPrefix: string | undefined): string | null {
  if (!runPrefix || !new RegExp(`^[0-9a-f]{${2 * RUN_PREFIX_BYTES}}$`).test(runPrefix)) return 'the journal names no run CKA_ID prefix';
  if (!isRunLabelPrefix(prefix)) return `it is not ${LABEL_PREFIX}<run prefix>-<name>-`;
  if (!prefix.startsWith(`${LABEL_PREFIX}${runPrefix}-`)) return "it does not embed the run's prefix";
  return null;
}

export interface DriverLeftovers {
  workers: JournalProcess[];
  pids: JournalProcess[];
  dirs: string[];
  containers: string[];
  tokens: TokenObjects[];
  /** Why objects could not be removed (filled by a cleanup attempt). */
  errors?: string[];
}

/** A journal line that is not acted on, and why (line 0: the file itself). */
export interface Refused {
  line: number;
  reason: string;
}

export interface Outstanding {
  run?: { pid: number; start?: string; startedAt: string; prefix?: string };
  ended: boolean;
  drivers: Map<string, DriverLeftovers>;
  /** Lines not acted on (corrupt, or naming something the harness would not have created), not yet retired. */
  refused: Refused[];
}

/** What the entries leave outstanding: created and not yet proven gone or released. */
export function outstanding(lines: Parsed[]): Outstanding {
  const result: Outstanding = { ended: false, drivers: new Map(), refused: [] };
  const retired = new Set<number>();
  for (const l of lines) if ('entry' in l && l.entry.t === 'retired') retired.add(l.entry.line);
  const refuse = (line: number, reason: string) => {
    if (!retired.has(line)) result.refused.push({ line, reason });
  };
  const d = (id: string): DriverLeftovers => {
    let x = result.drivers.get(id);
    if (!x) result.drivers.set(id, (x = { workers: [], pids: [], dirs: [], containers: [], tokens: [] }));
    return x;
  };
  const tokenOf = (driver: string, t: TokenIdentity, ephemeral?: boolean): TokenObjects => {
    const list = d(driver).tokens;
    let e = list.find((x) => tokenKey(x.token) === tokenKey(t));
    if (!e) list.push((e = { token: t, ephemeral: ephemeral ?? false, objects: [], labelled: [], signers: [] }));
    if (ephemeral !== undefined) e.ephemeral = ephemeral;
    return e;
  };
  for (const l of lines) {
    if ('bad' in l) {
      refuse(l.line, `line ${l.line} ${l.bad}`);
      continue;
    }
    const e = l.entry;
    switch (e.t) {
      case 'run':
        // Only the first run line counts: it is written when the file is created.
        result.run ??= { pid: e.pid, start: e.start, startedAt: e.startedAt, prefix: e.prefix };
        break;
      case 'worker':
      case 'pid': {
        if (e.start === undefined || e.cmdline === undefined) {
          refuse(l.line, `line ${l.line}: process ${e.pid} was journalled without its start time and command line, so it cannot be told from another process`);
          break;
        }
        const list = e.t === 'worker' ? d(e.driver).workers : d(e.driver).pids;
        if (!list.some((p) => p.pid === e.pid)) list.push({ pid: e.pid, start: e.start, cmdline: e.cmdline, ...(e.becomes ? { becomes: e.becomes } : {}) });
        break;
      }
      case 'dir': {
        const why = notHarnessTempDir(e.path);
        if (why) refuse(l.line, `line ${l.line}: directory ${JSON.stringify(e.path)} ${why}: not removed`);
        else if (!d(e.driver).dirs.includes(e.path)) d(e.driver).dirs.push(e.path);
        break;
      }
      case 'container':
        if (!d(e.driver).containers.includes(e.id)) d(e.driver).containers.push(e.id);
        break;
      case 'token':
        tokenOf(e.driver, e.token, e.ephemeral);
        break;
      case 'object': {
        const why = notOurObject(e.id, e.label, result.run?.prefix);
        if (why) {
          refuse(
            l.line,
            `line ${l.line}: object ${JSON.stringify(e.id.slice(0, 80))} ${JSON.stringify(e.label.slice(0, 80))} is not one this run created (${why}): not removed`,
          );
          break;
        }
        const t = tokenOf(e.driver, e.token);
        if (!t.objects.some((o) => o.id === e.id)) t.objects.push({ id: e.id, label: e.label });
        break;
      }
      case 'object-gone': {
        const t = tokenOf(e.driver, e.token);
        t.objects = t.objects.filter((o) => o.id !== e.id);
        break;
      }
      case 'labelled': {
        const why = notOurLabelPrefix(e.prefix, result.run?.prefix);
        if (why) {
          refuse(l.line, `line ${l.line}: label prefix ${JSON.stringify(e.prefix.slice(0, 80))} is not one of this run's (${why}): nothing removed by it`);
          break;
        }
        const t = tokenOf(e.driver, e.token);
        if (!t.labelled.includes(e.prefix)) t.labelled.push(e.prefix);
        break;
      }
      case 'labelled-gone': {
        const t = tokenOf(e.driver, e.token);
        t.labelled = t.labelled.filter((p) => p !== e.prefix);
        break;
      }
      case 'signer-keys': {
        // Only a directory the harness named: the signer's record is read from it, and it is removed afterwards.
        const why = notHarnessTempDir(e.dir);
        if (why) {
          refuse(l.line, `line ${l.line}: signer directory ${JSON.stringify(e.dir.slice(0, 120))} ${why}: not read, nothing removed by it`);
          break;
        }
        const t = tokenOf(e.driver, e.token);
        if (!t.signers.some((x) => x.dir === e.dir)) t.signers.push({ signer: e.signer, dir: e.dir });
        break;
      }
      case 'signer-keys-gone': {
        const t = tokenOf(e.driver, e.token);
        t.signers = t.signers.filter((x) => x.dir !== e.dir);
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
      case 'retired':
        break;
    }
  }
  for (const x of result.drivers.values()) x.tokens = x.tokens.filter((t) => t.objects.length + t.labelled.length + t.signers.length > 0);
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

/** Whether a name in the journal directory is a file at all (a directory named x.jsonl is reported, not read). */
export function isJournalFile(file: string): boolean {
  try {
    return lstatSync(file).isFile();
  } catch {
    return false;
  }
}

/** One line per kind of leftover, for crash/timeout records and the cleanup command's output. */
export function describeLeftovers(x: DriverLeftovers): string[] {
  const lines: string[] = [];
  for (const t of x.tokens) {
    const where = `on token "${t.token.label}" (serial ${t.token.serial || '?'}, module ${t.token.modulePath})`;
    if (t.objects.length) lines.push(`${t.objects.length} object(s) ${where}, CKA_ID ${t.objects.map((o) => o.id).join(', ')}`);
    if (t.labelled.length) lines.push(`objects a signer may have made ${where}, labels starting ${t.labelled.join(', ')}`);
    for (const s of t.signers) lines.push(`keys ${s.signer} may have made ${where}, as recorded in ${s.dir}`);
  }
  if (x.pids.length) lines.push(`process(es) ${x.pids.map((p) => p.pid).join(', ')}`);
  if (x.workers.length) lines.push(`driver process(es) ${x.workers.map((p) => p.pid).join(', ')}`);
  if (x.dirs.length) lines.push(`director${x.dirs.length === 1 ? 'y' : 'ies'} ${x.dirs.join(', ')}`);
  if (x.containers.length) lines.push(`container(s) ${x.containers.join(', ')}`);
  return lines;
}
