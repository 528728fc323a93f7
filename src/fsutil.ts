import { mkdir, rename, writeFile, mkdtemp, rm, rmdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
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
