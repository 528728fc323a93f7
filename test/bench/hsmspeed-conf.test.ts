/**
 * ods-hsmspeed reads the PIN from conf.xml. The file must exist only while ods-hsmspeed starts: the harness
 * deletes it as soon as the tool has read it, and a run stopped with Ctrl-C leaves neither the file nor its
 * directory behind. Real ods-hsmspeed (Debian libhsm-bin) on a real SoftHSM token.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SoftHsmStore, SOFTHSM_MODULE } from '../../src/softhsm.js';
import { runHsmspeed, writeHsmspeedConf } from '../../bench/hsmspeed.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

describe('conf.xml with the PIN', () => {
  let store: SoftHsmStore;
  let dir: string;
  beforeAll(async () => {
    store = await SoftHsmStore.create();
    dir = await mkdtemp(join(tmpdir(), 'hh-hsmspeed-conf-'));
  });
  afterAll(async () => {
    await store?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('is deleted once ods-hsmspeed has read it, while ods-hsmspeed still signs', async () => {
    const token = await store.addToken('hh-conf');
    const conf = await writeHsmspeedConf(dir, { name: 'r', modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: token.pin });
    let settled = false;
    let goneWhileRunning = false;
    const run = runHsmspeed(conf, 'r', 1, 1000, { ...process.env, ...store.env }, 300_000).finally(() => {
      settled = true;
    });
    while (!settled) {
      if (!existsSync(conf)) {
        goneWhileRunning = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const result = await run;
    expect(result.iterationsPerThread).toBe(1000); // so ods-hsmspeed did read the PIN and sign
    expect(goneWhileRunning).toBe(true);
    expect(existsSync(conf)).toBe(false);
  }, 320_000);
});

describe('Ctrl-C during the ods-hsmspeed side by side', () => {
  test('leaves no conf.xml and no temporary directory', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'hh-hsmspeed-int-'));
    const out = join(tmp, 'reports');
    try {
      // The CLI and everything it starts get their own TMPDIR, so other runs on the machine do not interfere.
      const child = spawn('node', [CLI, 'bench', '--driver', 'softhsm', '--compare', 'ods-hsmspeed', '--time', '120', '--quiet', '--out', out], {
        env: { ...process.env, TMPDIR: tmp },
        detached: true,
        stdio: 'ignore',
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const deadline = Date.now() + 120_000;
      let seen = false;
      while (Date.now() < deadline && !seen) {
        seen = (await readdir(tmp)).some((f) => f.startsWith('hsm-harness-hsmspeed-'));
        if (!seen) await new Promise((r) => setTimeout(r, 100));
      }
      expect(seen, 'the side by side started').toBe(true);
      await new Promise((r) => setTimeout(r, 1500));
      process.kill(-child.pid!, 'SIGINT'); // Ctrl-C reaches the whole process group
      expect(await exited).toBe(130);
      const left = (await readdir(tmp, { recursive: true })).map(String);
      expect(left.filter((f) => /hsmspeed|conf\.xml|softhsm/.test(f))).toEqual([]);
      expect(existsSync(out)).toBe(false);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }, 180_000);
});
