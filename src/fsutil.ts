import { existsSync, lstatSync } from 'node:fs';
import { mkdir, readdir, rename, writeFile, mkdtemp, rm, rmdir, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { UsageError } from './errors.js';
import { harnessRunAlive } from './proc.js';
import { hold, release } from './ledger.js';

/**
 * Write one file so that readers see either the old file or the complete new one, never a partial file:
 * write a temporary sibling, then rename over the target (atomic on POSIX within one directory).
 * A set of files that belongs together (reports, the merged site) goes through replaceDir instead.
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
  hold({ t: 'dir', path });
  return {
    path,
    remove: async () => {
      await rm(path, { recursive: true, force: true });
      release({ t: 'dir', path });
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

/** Why replaceDir failed: writing the new tree (`write`) or switching it in (`switch`); either way `dir` is as it was. */
export class DirSwitchError extends Error {
  constructor(
    readonly step: 'write' | 'switch',
    override readonly cause: unknown,
  ) {
    super(`${step === 'write' ? 'writing' : 'switching in'} the new directory failed: ${(cause as Error)?.message ?? cause}`);
  }
}

/**
 * Replace directory `dir` as a whole: `fill` writes the new tree into a fresh sibling (.DIR.new-PID-RANDOM),
 * then two renames switch it in (the previous tree goes to .DIR.old-PID-RANDOM for that instant, and is put
 * back when the second rename fails). Readers see the complete previous tree or the complete new one; a
 * failure at any step leaves the previous tree in place. `renameImpl` exists for the test that makes the
 * switch fail, which a real file system will not do on demand.
 */
export async function replaceDir(dir: string, fill: (stage: string) => Promise<void>, renameImpl = rename): Promise<void> {
  const sibling = (kind: string) => join(dirname(dir), `.${basename(dir)}.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const stage = sibling('new');
  try {
    await mkdir(stage);
    await fill(stage);
  } catch (err) {
    await rm(stage, { recursive: true, force: true }).catch(() => undefined);
    throw new DirSwitchError('write', err);
  }
  const old = sibling('old');
  const hadOld = existsSync(dir);
  try {
    if (hadOld) await renameImpl(dir, old);
    try {
      await renameImpl(stage, dir);
    } catch (err) {
      if (hadOld) await renameImpl(old, dir);
      throw err;
    }
  } catch (err) {
    await rm(stage, { recursive: true, force: true }).catch(() => undefined);
    throw new DirSwitchError('switch', err);
  }
  if (hadOld) await rm(old, { recursive: true, force: true }).catch(() => undefined);
}

/** What a replaceDir killed mid-way left beside `dir`: its staged tree is removed, a previous tree caught between the renames put back. */
export async function recoverDirSwitch(dir: string): Promise<void> {
  const prefix = `.${basename(dir)}.`;
  for (const name of await readdir(dirname(dir))) {
    const m = name.startsWith(prefix) ? /^(new|old)-(\d+)-[0-9a-f]+$/.exec(name.slice(prefix.length)) : null;
    if (!m || harnessRunAlive(Number(m[2]))) continue;
    const path = join(dirname(dir), name);
    if (m[1] === 'old' && !existsSync(dir)) await rename(path, dir);
    else await rm(path, { recursive: true, force: true });
  }
}
