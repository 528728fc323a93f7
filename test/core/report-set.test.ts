/**
 * Reports as one atomic set (issue 11, items 8 and 10): a run replaces the whole set in --out (stale bench
 * files do not survive, other plain files do), a second run on the same --out is refused while the first
 * lives (and a dead run's lock does not block), a full disk leaves the previous set untouched (a real
 * tmpfs mounted here when the tests run as root), and --out '' or the current directory are usage errors.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, CLI, skipWithReason } from './helpers.js';
import type { RunResults } from '../../src/results.js';

const exec = promisify(execFile);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-report-set-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const RUN = ['run', '--driver', 'softhsm', '--suite', 'discovery'];

function expectOneLineUsageError(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect(r.code).toBe(2);
  // Progress lines of a run that got that far may come first; the error is one line of its own.
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('hsm-harness:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

describe('the report directory is replaced as one set', () => {
  test('stale bench files go, a README stays, a repeated --driver runs once, nothing is left beside it', async () => {
    const out = join(dir, 'reports');
    await mkdir(out);
    await writeFile(join(out, 'README.md'), 'notes kept\n');
    for (const f of ['bench.json', 'bench.md', 'bench-throughput.svg', 'results.json', 'index.html']) await writeFile(join(out, f), 'stale\n');
    const r = await cli([...RUN, '--driver', 'softhsm', '--out', out]);
    expect(r.code).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['README.md', 'capabilities.md', 'index.html', 'junit.xml', 'results.json']);
    expect(await readFile(join(out, 'README.md'), 'utf8')).toBe('notes kept\n');
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
    expect(results.drivers.map((d) => d.id)).toEqual(['softhsm']);
    // No lock, staging or old set left beside the directory.
    expect((await readdir(dir)).filter((n) => n.startsWith('.reports'))).toEqual([]);
  });

  test('a second run on the same --out is refused while the first runs; the first completes', async () => {
    const out = join(dir, 'concurrent');
    const first = spawn('node', [CLI, ...RUN, '--out', out], { stdio: 'ignore' });
    const firstDone = new Promise<number | null>((resolve) => first.once('exit', (code) => resolve(code)));
    const lock = join(dir, '.concurrent.hsm-harness.lock');
    for (let i = 0; i < 600 && !existsSync(lock); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(lock)).toBe(true);
    const second = await cli([...RUN, '--out', out]);
    expectOneLineUsageError(second, new RegExp(`another hsm-harness run \\(pid ${first.pid}\\) is writing reports to ${out}`));
    expect(await firstDone).toBe(0);
    expect(existsSync(join(out, 'results.json'))).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });

  test('the lock of a run that died (kill -9) does not block the next run', async () => {
    const out = join(dir, 'stale-lock');
    const dead = spawnSync('node', ['-e', 'process.exit(0)']).pid!;
    await writeFile(join(dir, '.stale-lock.hsm-harness.lock'), `${dead}\n`);
    // A half-written set the dead run left beside it is removed too.
    await mkdir(join(dir, `.stale-lock.new-${dead}-abcd1234`));
    const r = await cli([...RUN, '--out', out]);
    expect(r.code).toBe(0);
    expect(existsSync(join(out, 'results.json'))).toBe(true);
    expect((await readdir(dir)).filter((n) => n.startsWith('.stale-lock'))).toEqual([]);
  });

  test("--out '' and --out of the current directory are usage errors", async () => {
    expectOneLineUsageError(await cli([...RUN, '--out', '']), /--out is empty/);
    const cwd = join(dir, 'cwd');
    await mkdir(cwd);
    expectOneLineUsageError(await cli([...RUN, '--out', '.'], {}, { cwd }), /is the current directory or one of its parents/);
    expectOneLineUsageError(await cli([...RUN, '--out', '..'], {}, { cwd }), /is the current directory or one of its parents/);
    expect(await readdir(cwd)).toEqual([]);
  });
});

const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0;

describe('a full disk', () => {
  test('leaves the previous set untouched and says so in one line (real tmpfs)', async (ctx) => {
    if (!canMount) return skipWithReason(ctx, 'mounting a tmpfs needs root and mount(8); the full-disk check was not run');
    const mnt = join(dir, 'tmpfs');
    await mkdir(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
    if (m.status !== 0) throw new Error(`mount failed: ${m.stderr}`);
    try {
      const out = join(mnt, 'reports');
      await mkdir(out);
      const previous: Record<string, string> = { 'results.json': '{"previous":"set"}\n', 'junit.xml': '<old/>\n', 'index.html': '<p>old</p>\n' };
      for (const [f, t] of Object.entries(previous)) await writeFile(join(out, f), t);
      // Fill the file system, leaving 32 KiB: room for the lock and the write check, not for the new set.
      const fs = await statfs(mnt);
      const freeKiB = (fs.bavail * fs.bsize) / 1024;
      await exec('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=1k', `count=${freeKiB - 32}`]);
      const r = await cli([...RUN, '--out', out]);
      expectOneLineUsageError(r, /cannot write reports to .*\(ENOSPC\); the previous reports are unchanged/);
      expect((await readdir(out)).sort()).toEqual(Object.keys(previous).sort());
      for (const [f, t] of Object.entries(previous)) expect(await readFile(join(out, f), 'utf8')).toBe(t);
      expect((await readdir(mnt)).sort()).toEqual(['filler', 'reports']);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});
