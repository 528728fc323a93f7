/**
 * Commands are imported only when they run (src/commands/index.ts), so the commands that need no token do not
 * load the PKCS#11 addon. The proof is the process's own list of loaded shared objects (process.report), read
 * at exit by a preloaded script; `discover`, which needs the addon, shows that the probe sees it when it is there.
 * `dkek` works on files only: its blob check uses the pure public-key helpers (src/pkcs11/public-key.ts).
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './helpers.js';

const exec = promisify(execFile);
let dir: string;
let probe: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-lazy-'));
  probe = join(dir, 'loaded.cjs');
  await writeFile(probe, `process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(process.report.getReport().sharedObjects) + '\\n'));\n`);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The shared objects the CLI process had loaded when it exited. */
async function loadedBy(args: string[]): Promise<string[]> {
  const r = await exec('node', ['-r', probe, CLI, ...args], { timeout: 120_000 }).catch((e: { stderr: string }) => e);
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  expect(line, r.stderr).toBeDefined();
  return JSON.parse(line!.slice('LOADED '.length)) as string[];
}

const addon = (objects: string[]) => objects.filter((o) => /pkcs11js|pkcs11\.node$/.test(o));

describe('commands that need no token do not load the PKCS#11 addon', () => {
  // A KMIP 1.2 Protocol Version structure (tag 0x420069) holding Major 1 (tag 0x42006A, Integer).
  const ttlv = '420069010000001042006a02000000040000000100000000';
  test.each([[['--version']], [['kmip', 'decode', ttlv]], [['dkek', '--help']]])('%j', async (args) => {
    const loaded = await loadedBy(args);
    expect(loaded.length).toBeGreaterThan(0); // the report lists the process's libraries at all
    expect(addon(loaded)).toEqual([]);
  });

  test('the probe sees the addon in a command that loads it (discover)', async () => {
    expect(addon(await loadedBy(['discover', '--help'])).length).toBeGreaterThan(0);
  });
});
