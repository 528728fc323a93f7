import { mkdir, rename, writeFile, mkdtemp, rm, rmdir, stat, open, type FileHandle } from 'node:fs/promises';
import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute, normalize, resolve } from 'node:path';
import { UsageError } from './errors.js';
import { dirname, join, basename } from 'node:path';
import { tmpdir } from 'node:os';
import { ownResource, releaseOwned } from './proc.js';

/**
 * Write one file so that readers see either the old file or the complete new one, never a partial file:
 * write a temporary sibling, then rename over the target (atomic on POSIX within one directory).
 * Reports go through ReportDir (src/reportdir.ts) instead, which switches the whole set at once.
 */
export async function writeFileAtomic(path: string, content: string | Buffer): Promise<void> {
  await makeDirs(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    await writeFile(tmp, content);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** The name of every temporary directory makeTempDir creates: hsm-harness-<what>-<6 characters of mkdtemp>. */
const TEMP_DIR_NAME = /^hsm-harness-[a-z0-9][a-z0-9-]*-[A-Za-z0-9]{6}$/;

/**
 * Why a path cannot be a directory makeTempDir created, or null when it can: absolute, already in normal
 * form (no `.`, `..` or `//`), named as makeTempDir names them. Cleanup checks this before removing a
 * journalled directory, and refuses a symlink or a directory of another user (harnessTempDirNow).
 */
export function notHarnessTempDir(path: string): string | null {
  if (!isAbsolute(path)) return 'is not an absolute path';
  if (normalize(path) !== path || path.endsWith('/') || path.split('/').includes('..')) return 'is not in normal form';
  if (!TEMP_DIR_NAME.test(basename(path))) return 'is not named like a temporary directory of hsm-harness (hsm-harness-<what>-XXXXXX)';
  return null;
}

/** notHarnessTempDir, plus what the path is now: a real directory (not a symlink) of this user, or gone. */
export function harnessTempDirNow(path: string): { gone: boolean; refused: string | null } {
  const why = notHarnessTempDir(path);
  if (why) return { gone: false, refused: why };
  let st: import('node:fs').Stats;
  try {
    st = lstatSync(path);
  } catch {
    return { gone: true, refused: null };
  }
  if (st.isSymbolicLink()) return { gone: false, refused: 'is a symbolic link' };
  if (!st.isDirectory()) return { gone: false, refused: 'is not a directory' };
  if (process.getuid && st.uid !== process.getuid()) return { gone: false, refused: 'belongs to another user' };
  return { gone: false, refused: null };
}

/** A private temporary directory, removed by the returned function. */
export async function makeTempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `hsm-harness-${prefix}-`));
  ownResource({ dir: path });
  return {
    path,
    remove: async () => {
      await rm(path, { recursive: true, force: true });
      releaseOwned({ dir: path });
    },
  };
}

/**
 * mkdir -p, one level at a time. Node's own recursive mkdir never returns for a path under /proc (it keeps
 * retrying ENOENT), which would hang a run at its very end. Returns the directories it created, deepest last.
 */
export async function makeDirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  let p = resolve(dir);
  for (;;) {
    try {
      if (!(await stat(p)).isDirectory()) throw Object.assign(new Error(`${p} is not a directory`), { code: 'ENOTDIR' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.unshift(p);
      const up = dirname(p);
      if (up === p) break;
      p = up;
    }
  }
  const created: string[] = [];
  for (const d of missing) {
    try {
      await mkdir(d);
      created.push(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return created;
}

/**
 * Check, before a run starts, that reports can be written to `dir`: create it (and parents), write and
 * delete a probe file, then remove only what this check created. A bad --out is a usage error found in
 * a second, not after a long run.
 */
export async function checkWritableDir(dir: string, option = '--out'): Promise<void> {
  let created: string[] = [];
  try {
    created = await makeDirs(dir);
    const probe = join(dir, `.hsm-harness-write-check.${process.pid}`);
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(`cannot write reports to ${dir} (${code}); choose a writable directory with ${option}`);
  } finally {
    for (const d of created.reverse()) await rmdir(d).catch(() => undefined);
  }
}

/** Limits for the files the harness reads, by format (docs/safety-input.md lists them). */
export const INPUT_LIMITS = {
  /** A DKEK share file, a password share, a wrapped-key blob, a public key: a few KiB at most. */
  keyFile: 64 * 1024,
  /** A PIN or password file (pin-source, env:/file: secrets): one line. */
  secretFile: 4 * 1024,
  /** A results.json of one run (every case of every driver, with details). */
  results: 64 * 1024 * 1024,
  /** A run journal (one line per object, process, directory). */
  journal: 16 * 1024 * 1024,
  /** An expectations or configuration file written by hand. */
  config: 1024 * 1024,
  /** A KMIP message (TTLV or its JSON form). */
  kmipMessage: 16 * 1024 * 1024,
} as const;

function tooBig(path: string, what: string, maxBytes: number): UsageError {
  return new UsageError(`${what} ${path} is larger than ${formatBytes(maxBytes)}, the limit for this kind of file; check that it is the right file`);
}

function notRegular(path: string, what: string, st: { isDirectory(): boolean; isFIFO(): boolean }): UsageError {
  const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : 'a device or socket';
  return new UsageError(`${what} ${path} is ${kind}, not a regular file; give the path of a file`);
}

function cannotRead(path: string, what: string, err: unknown): UsageError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  return new UsageError(`cannot read ${what} ${path} (${code}); check the path and its permissions`);
}

export function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${n / (1024 * 1024)} MiB` : `${n / 1024} KiB`;
}

// O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below then refuses it.
const OPEN_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY;

/**
 * Read a file the harness was given, bounded: only a regular file (FIFOs, devices, directories are refused
 * before any read), at most maxBytes (one byte more is read to tell a file that is too large). Every refusal
 * is a UsageError (one line, exit 2) naming `what` and the path.
 */
export async function readInputFile(path: string, maxBytes: number, what: string): Promise<Buffer> {
  let fh: FileHandle;
  try {
    fh = await open(path, OPEN_FLAGS);
  } catch (err) {
    throw cannotRead(path, what, err);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(path, what, st);
    if (st.size > maxBytes) throw tooBig(path, what, maxBytes);
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null).catch((err: unknown) => {
        throw cannotRead(path, what, err);
      });
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) throw tooBig(path, what, maxBytes);
    }
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

/** readInputFile for callers that must stay synchronous (the journal is read between appends). */
export function readInputFileSync(path: string, maxBytes: number, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (err) {
    throw cannotRead(path, what, err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(path, what, st);
    if (st.size > maxBytes) throw tooBig(path, what, maxBytes);
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      let bytesRead: number;
      try {
        bytesRead = readSync(fd, buf, n, buf.length - n, null);
      } catch (err) {
        throw cannotRead(path, what, err);
      }
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) throw tooBig(path, what, maxBytes);
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * How deeply arrays and objects nest in a JSON text, counted without parsing (strings skipped), so that a
 * hostile file is refused before any recursive code walks it. Stops counting past `limit`.
 */
export function jsonDepth(text: string, limit = 1000): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
      if (max > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
