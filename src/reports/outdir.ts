/**
 * The report directory (--out) as one atomic set. A run takes a lock beside the directory, writes the whole
 * set into a fresh sibling directory, and switches it in by renaming: readers see the complete previous
 * set or the complete new one, never a mix. A failed write (a full disk) leaves the previous set untouched;
 * report files of an earlier run that this run did not produce (bench files after a run without a
 * benchmark) do not survive. Plain files that are not reports (reports/README.md) are carried over.
 *
 * Names beside DIR (all in DIR's parent):
 *   .DIR.hsm-harness.lock       pid of the run writing DIR; a second run is refused while that pid lives
 *   .DIR.new-PID-RANDOM/        the set being written
 *   .DIR.old-PID-RANDOM/        the previous set, for the instant between the two renames
 * Leftovers of a run that was killed (dead pid) are removed, or restored, by the next run.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { copyFile, mkdir, readdir, rm, rmdir, stat, writeFile, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UsageError } from '../errors.js';
import { harnessRunAlive } from '../proc.js';
import { DirSwitchError, makeDirs, recoverDirSwitch, replaceDir } from '../fsutil.js';

const errCode = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

export class ReportDir {
  private lockHeld = false;
  private readonly created: string[];
  private readonly onExit = () => this.releaseSync();

  private constructor(
    readonly dir: string,
    readonly option: string,
    created: string[],
  ) {
    this.created = created;
  }

  private get parent(): string {
    return dirname(this.dir);
  }
  private get base(): string {
    return basename(this.dir);
  }
  private get lockPath(): string {
    return join(this.parent, `.${this.base}.hsm-harness.lock`);
  }

  /**
   * Check --out before anything runs (bad input is found in a second, not after a long run) and take the
   * lock. Refused: an empty path, the current directory or one of its parents, a file, a directory with
   * subdirectories (not a report directory), a directory another live run is writing.
   */
  static async open(out: string, option = '--out'): Promise<ReportDir> {
    if (out.trim() === '') throw new UsageError(`${option} is empty; give the directory for the reports, e.g. ${option} reports`);
    const dir = resolve(out);
    const rel = relative(dir, process.cwd());
    if (dir === dirname(dir) || rel === '' || !(rel === '..' || rel.startsWith(`..${sep}`))) {
      throw new UsageError(
        `${option} ${dir} is the current directory or one of its parents; reports replace their directory as a whole, so choose a directory of their own, e.g. ${option} reports`,
      );
    }
    let created: string[];
    try {
      created = await makeDirs(dirname(dir));
    } catch (err) {
      throw new UsageError(`cannot write reports to ${dir} (${errCode(err)}); choose a writable directory with ${option}`);
    }
    const rd = new ReportDir(dir, option, created);
    try {
      await rd.lock();
      await recoverDirSwitch(rd.dir);
      await rd.checkTarget();
      // Writability of the parent, where the new set is staged.
      const probe = join(rd.parent, `.${rd.base}.new-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        await mkdir(probe);
        await writeFile(join(probe, 'probe'), '');
        await rm(probe, { recursive: true, force: true });
      } catch (err) {
        await rm(probe, { recursive: true, force: true }).catch(() => undefined);
        throw new UsageError(`cannot write reports to ${dir} (${errCode(err)}); choose a writable directory with ${option}`);
      }
    } catch (err) {
      await rd.release();
      throw err;
    }
    return rd;
  }

  private async lock(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.lockPath, 'wx');
        try {
          writeSync(fd, `${process.pid}\n`);
        } catch (err) {
          // A full disk creates the file but cannot hold the pid: leave nothing behind.
          closeSync(fd);
          unlinkSync(this.lockPath);
          throw err;
        }
        closeSync(fd);
        this.lockHeld = true;
        process.on('exit', this.onExit);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new UsageError(`cannot write reports to ${this.dir} (${errCode(err)}); choose a writable directory with ${this.option}`);
        }
      }
      const pid = Number(readFileSafe(this.lockPath).trim());
      if (harnessRunAlive(pid)) {
        throw new UsageError(`another hsm-harness run (pid ${pid}) is writing reports to ${this.dir}; wait for it to finish or choose another ${this.option}`);
      }
      // The run that held it is gone (killed): its lock is stale.
      try {
        unlinkSync(this.lockPath);
      } catch {
        /* raced with another run; try again */
      }
    }
    throw new UsageError(`another hsm-harness run is taking the lock on ${this.dir}; wait for it to finish or choose another ${this.option}`);
  }

  private async checkTarget(): Promise<void> {
    let st: Stats;
    try {
      st = await stat(this.dir);
    } catch {
      // Nothing there, or a symlink to nothing: the latter would be found only when the reports are switched in.
      const link = await readlink(this.dir).catch(() => undefined);
      if (link !== undefined) {
        throw new UsageError(`${this.option} ${this.dir} is a symbolic link to ${link}, which does not exist; create that directory or give another one`);
      }
      return;
    }
    if (!st.isDirectory()) throw new UsageError(`${this.option} ${this.dir} is a file; give a directory for the reports`);
    for (const e of await readdir(this.dir, { withFileTypes: true })) {
      if (!e.isFile()) {
        throw new UsageError(
          `${this.option} ${this.dir} holds ${e.isDirectory() ? 'a directory' : 'something other than files'} (${e.name}), so it is not a report directory; choose a new or empty directory`,
        );
      }
    }
  }

  /**
   * Write `files` as the new set and switch it in. `ownNames` are the report file names of any run: those
   * present from an earlier run and not in `files` are dropped; other plain files are carried over.
   */
  async publish(files: [string, string | Buffer][], ownNames: Set<string>): Promise<string[]> {
    try {
      await replaceDir(this.dir, async (stage) => {
        for (const [name, content] of files) await writeFile(join(stage, name), content);
        if (!existsSync(this.dir)) return;
        for (const e of await readdir(this.dir, { withFileTypes: true })) {
          if (e.isFile() && !ownNames.has(e.name) && !files.some(([n]) => n === e.name)) await copyFile(join(this.dir, e.name), join(stage, e.name));
        }
      });
    } catch (err) {
      if (!(err instanceof DirSwitchError)) throw err;
      throw new UsageError(
        err.step === 'write'
          ? `cannot write reports to ${this.dir} (${errCode(err.cause)}); the previous reports are unchanged; free space or choose another ${this.option}`
          : `cannot switch in the new reports at ${this.dir} (${errCode(err.cause)}); the previous reports are unchanged`,
      );
    }
    this.created.length = 0;
    return files.map(([name]) => join(this.dir, name));
  }

  /** Give up the lock (and the parent directories created for a run that wrote nothing). */
  async release(): Promise<void> {
    this.releaseSync();
    for (const d of [...this.created].reverse()) await rmdir(d).catch(() => undefined);
  }

  private releaseSync(): void {
    if (!this.lockHeld) return;
    this.lockHeld = false;
    process.off('exit', this.onExit);
    try {
      if (Number(readFileSafe(this.lockPath).trim()) === process.pid) rmSync(this.lockPath, { force: true });
    } catch {
      /* already gone */
    }
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
