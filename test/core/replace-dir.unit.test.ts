/**
 * replaceDir (src/fsutil.ts), the one atomic directory switch of `run --out` and `merge --out`: whatever step
 * fails, the previous tree stays where it was, complete, and nothing staged is left beside it. A real file
 * system does not fail a rename on demand, so the switch's failures come from an injected rename; the write
 * failure is a real one (a file where the fill wants a directory).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { DirSwitchError, recoverDirSwitch, replaceDir } from '../../src/fsutil.js';

let parent: string;
let site: string;

beforeEach(() => {
  parent = mkdtempSync(join(tmpdir(), 'replace-dir-'));
  site = join(parent, 'site');
  mkdirSync(join(site, 'runs'), { recursive: true });
  writeFileSync(join(site, 'index.html'), 'old index');
  writeFileSync(join(site, 'runs', 'a.json'), 'old run');
});
afterEach(() => rmSync(parent, { recursive: true, force: true }));

const oldSiteIsWhole = () => {
  expect(readFileSync(join(site, 'index.html'), 'utf8')).toBe('old index');
  expect(readFileSync(join(site, 'runs', 'a.json'), 'utf8')).toBe('old run');
  expect(readdirSync(parent)).toEqual(['site']);
};

const fillNew = async (stage: string) => writeFileSync(join(stage, 'index.html'), 'new index');

describe('replaceDir', () => {
  test('switches the new tree in whole: nothing of the old tree survives, nothing is left beside it', async () => {
    await replaceDir(site, fillNew);
    expect(readdirSync(site)).toEqual(['index.html']);
    expect(readFileSync(join(site, 'index.html'), 'utf8')).toBe('new index');
    expect(readdirSync(parent)).toEqual(['site']);
  });

  test('creates the directory when there was none', async () => {
    rmSync(site, { recursive: true });
    await replaceDir(site, fillNew);
    expect(readFileSync(join(site, 'index.html'), 'utf8')).toBe('new index');
  });

  test('a failing write keeps the old tree', async () => {
    const err = await replaceDir(site, async (stage) => {
      writeFileSync(join(stage, 'runs'), 'a file');
      mkdirSync(join(stage, 'runs', 'x'));
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirSwitchError);
    expect((err as DirSwitchError).step).toBe('write');
    oldSiteIsWhole();
  });

  test('a failing rename of the new tree into place puts the old tree back', async () => {
    let calls = 0;
    const failSecond = async (from: Parameters<typeof rename>[0], to: Parameters<typeof rename>[1]) => {
      if (++calls === 2) throw Object.assign(new Error('injected'), { code: 'EXDEV' });
      await rename(from, to);
    };
    const err = await replaceDir(site, fillNew, failSecond).catch((e: unknown) => e);
    expect(calls).toBe(3); // old aside, new in (fails), old back
    expect((err as DirSwitchError).step).toBe('switch');
    oldSiteIsWhole();
  });

  test('a failing rename of the old tree aside changes nothing', async () => {
    const failAll = async () => {
      throw Object.assign(new Error('injected'), { code: 'EBUSY' });
    };
    const err = await replaceDir(site, fillNew, failAll).catch((e: unknown) => e);
    expect((err as DirSwitchError).step).toBe('switch');
    oldSiteIsWhole();
  });
});

describe('recoverDirSwitch', () => {
  test('puts back an old tree a killed switch left between its renames, and removes its staged tree', async () => {
    // pid 2**22 + 1 is above Linux's largest pid (pid_max ≤ 2**22), so no live process owns these.
    const dead = 2 ** 22 + 1;
    await rename(site, join(parent, `.site.old-${dead}-0a0b0c0d`));
    mkdirSync(join(parent, `.site.new-${dead}-01020304`));
    await recoverDirSwitch(site);
    oldSiteIsWhole();
  });
});
