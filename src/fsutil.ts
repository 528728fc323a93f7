import { mkdir, rename, writeFile, mkdtemp, rm, rmdir, stat } from 'node:fs/promises';
import { lstatSync } from 'node:fs';
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
