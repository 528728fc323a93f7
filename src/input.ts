/**
 * Reading the files the harness is given, bounded (docs/safety-input.md, "Input limits"): only regular files
 * (a FIFO, a device or a directory is refused before a byte is read), at most a limit fit for the format.
 * Kept apart from src/fsutil.ts, which owns temporary directories through src/proc.ts: src/secrets.ts reads
 * PIN files through this module, and proc.ts masks with secrets.ts.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { UsageError } from './errors.js';

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

const CHUNK = 256 * 1024;

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
    // In chunks, never more than the limit plus one byte: /proc files say size 0 and still hold bytes.
    const chunks: Buffer[] = [];
    let n = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(CHUNK, maxBytes + 1 - n));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null).catch((err: unknown) => {
        throw cannotRead(path, what, err);
      });
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      n += bytesRead;
      if (n > maxBytes) throw tooBig(path, what, maxBytes);
    }
    return Buffer.concat(chunks);
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
    const chunks: Buffer[] = [];
    let n = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(CHUNK, maxBytes + 1 - n));
      let bytesRead: number;
      try {
        bytesRead = readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        throw cannotRead(path, what, err);
      }
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      n += bytesRead;
      if (n > maxBytes) throw tooBig(path, what, maxBytes);
    }
    return Buffer.concat(chunks);
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
