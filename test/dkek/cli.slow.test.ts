/**
 * The built CLI (dist/src/cli.js) end to end: it reproduces the public vector, and every kind of bad input
 * ends in one line on stderr, exit 2, with no password or share in any output. Each full share-file KDF
 * costs seconds, so the cases run concurrently and each decrypts as few files as it can.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dkek } from '../../src/dkek/dkek.js';
import { wrapBlob } from '../../src/dkek/blob.js';
import { keyToWrapFromKeyObject } from '../../src/dkek/keys.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const FIX = join(ROOT, 'fixtures', 'dkek');
const vector = JSON.parse(await readFile(join(FIX, 'public-vector.json'), 'utf8'));
const SHARE = join(FIX, 'nitrokey-share.pbe');
const WRAP = join(FIX, 'wrapped-btc-key.bin');
// The created share's password: a canary that must never show up in any output.
const CANARY = 'canary-Pw-7f3a9c';

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}
function cli(args: string[], env: Record<string, string> = {}, input?: string): Promise<Out> {
  return new Promise((resolve) => {
    const child = execFile(
      'node',
      [CLI, 'dkek', ...args],
      { env: { ...process.env, DKEK_PW: vector.password, NEW_PW: CANARY, ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Exit 2, exactly one line on stderr matching `message`, nothing secret anywhere. */
function expectUsageError(r: Out, message: RegExp, secrets: string[] = []): void {
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(message);
  for (const s of [vector.password, vector.share, CANARY, ...secrets]) expect(r.stderr + r.stdout).not.toContain(s);
}

let dir: string;
beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('build first: npx tsc -p .');
  dir = await mkdtemp(join(tmpdir(), 'dkek-cli-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.concurrent('hsm-harness dkek', () => {
  test('blob-verify accepts the real-device wrap file and prints type, size, KCV, CMAC and public key', async () => {
    const r = await cli(['blob-verify', '--wrap', WRAP, '--share', SHARE, '--password', 'env:DKEK_PW']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Key type {5}: 12 \(ECC\)/);
    expect(r.stdout).toMatch(/Key size {5}: 256 bits/);
    expect(r.stdout).toContain(`KCV          : ${vector.kcv}`); // the public vector's KCV, from its share file
    expect(r.stdout).toMatch(/CMAC {9}: valid/);
    expect(r.stdout).toContain(`Public key   : secp256k1 ${vector.wrapFile.publicPoint}`);
    expect(r.stdout).toMatch(/Restorable {3}: yes/);
    expect(r.stdout).not.toContain(vector.share);
  });

  test('a wrong password: one line, exit 2, no secret', async () => {
    const r = await cli(['kcv', '--share', SHARE, '--password', 'env:NEW_PW']);
    expectUsageError(r, /wrong password or corrupted share file/);
  });

  test('a blob under another DKEK fails verification: exit 1, both KCVs named once', async () => {
    // A bare blob wrapped by the library under a random DKEK; the CLI decrypts only the fixture share.
    const share = randomBytes(32);
    const path = join(dir, 'other.blob');
    await writeFile(path, wrapBlob({ kind: 'aes', key: randomBytes(32) }, Dkek.fromShares([share])));
    const r = await cli(['blob-verify', '--wrap', path, '--share', SHARE, '--password', 'env:DKEK_PW']);
    // The blob's KCV by docs/dkek-formats.md §3 (SHA-256 of the one-share DKEK, first 8 bytes), computed with node:crypto.
    const kcv = createHash('sha256').update(share).digest().subarray(0, 8).toString('hex').toUpperCase();
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    const finding = `blob wrapped under DKEK with KCV ${kcv}; these shares give ${vector.kcv}`;
    expect(r.stdout.split(finding)).toHaveLength(2);
    expect(r.stdout).toMatch(/Restorable {3}: NO/);
    for (const s of [vector.password, vector.share]) expect(r.stdout).not.toContain(s);
  });

  test('an authentic blob whose key fails the math (Q is not d·G) exits 1 with the failed check', async () => {
    const dkek = Dkek.fromShares([Buffer.from(vector.share, 'hex')]);
    const a = keyToWrapFromKeyObject(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const b = keyToWrapFromKeyObject(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    if (a.kind !== 'ec' || b.kind !== 'ec') throw new Error('expected EC');
    const path = join(dir, 'mismatched.blob');
    await writeFile(path, wrapBlob({ ...a, q: b.q }, dkek));
    const r = await cli(['blob-verify', '--wrap', path, '--share', SHARE, '--password', 'env:DKEK_PW']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL Q = d·G/);
    expect(r.stdout).toMatch(/Restorable {3}: NO/);
    expect(r.stdout).not.toContain(a.d.toString('hex'));
  });

  // Tampered blobs (bad CMAC) go through the CLI in roundtrip.slow.test.ts, on a blob the SoftHSM round trip
  // exported; an unknown key type is covered by blob.unit.test.ts. Each CLI run here costs a full share KDF.

  test('share-create then share-decrypt: KCV is SHA-256 of the share; the share only with --reveal', async () => {
    const path = join(dir, 'new.pbe');
    const c = await cli(['share-create', '--out', path, '--password', 'env:NEW_PW']);
    expect(c.code).toBe(0);
    expect((await readFile(path)).subarray(0, 8).toString()).toBe('Salted__');
    const kcv = /KCV of this share alone: ([0-9A-F]{16})/.exec(c.stdout)![1];
    const r = await cli(['share-decrypt', path, '--password', 'env:NEW_PW', '--reveal', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kcv).toBe(kcv);
    expect(createHash('sha256').update(Buffer.from(j.share, 'hex')).digest().subarray(0, 8).toString('hex').toUpperCase()).toBe(kcv);
    expect(c.stdout + c.stderr).not.toContain(j.share);
    expect(c.stdout + c.stderr + r.stdout + r.stderr).not.toContain(CANARY);
    // never overwritten
    expectUsageError(await cli(['share-create', '--out', path, '--password', 'env:NEW_PW']), /already exists/);
  });

  test('pwd-split 2-of-3; two printed shares (stdin) rebuild the password that decrypts the share file; one is too few', async () => {
    const path = join(dir, 'split.pbe');
    const s = await cli(['pwd-split', '--threshold', '2', '--total', '3', '--out', path]);
    expect(s.code).toBe(0);
    const kcv = /KCV of this share alone: ([0-9A-F]{16})/.exec(s.stdout)![1];
    const blocks = s.stdout.split(/Share \d of 3/).slice(1);
    expect(blocks).toHaveLength(3);
    expect(blocks[0]).toMatch(/Prime {7}: [0-9a-f:]+\nThreshold {3}: 2\nShare ID {4}: 1\nShare value : [0-9a-f:]+/);
    const c = await cli(['pwd-combine', '-', '--json'], {}, blocks[2]! + blocks[0]!);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout)).toEqual({ shares: 2 }); // no password without --reveal
    const r = await cli(['kcv', '--share', path, '--password', 'shares:-', '--json'], {}, blocks[1]! + blocks[2]!);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ shares: 1, kcv });
    expectUsageError(await cli(['pwd-combine', '-', '--share', path], {}, blocks[1]!), /too few password shares: got 1/);
  });

  test('truncated or foreign share files, literal passwords and unknown subcommands are usage errors', async () => {
    const short = join(dir, 'short.pbe');
    await writeFile(short, (await readFile(SHARE)).subarray(0, 40));
    expectUsageError(await cli(['share-decrypt', short, '--password', 'env:DKEK_PW']), /is not a DKEK share file/);
    expectUsageError(await cli(['kcv', '--share', WRAP, '--password', 'env:DKEK_PW']), /is not a DKEK share file/);
    expectUsageError(await cli(['kcv', '--share', SHARE, '--password', 'passwordpassword']), /give the secret as env:VAR or file:PATH/);
    expectUsageError(await cli(['blob-verify', '--wrap', SHARE, '--share', SHARE, '--password', 'env:DKEK_PW']), /truncated or not a SmartCard-HSM key blob/);
    expectUsageError(await cli(['frobnicate']), /unknown subcommand "frobnicate"/);
  });
});
