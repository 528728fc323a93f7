/**
 * A wrap file with data after (or inside, beyond) its DER SEQUENCE is damaged: it must never verify as
 * "Restorable: yes" (issue 11, item 10). The intact fixture (an sc-hsm-tool wrap file from a real device)
 * still parses.
 */
import { describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobFromFile, encodeWrapFile, parseWrapFile } from '../../src/dkek/wrapfile.js';
import { DkekError } from '../../src/dkek/dkek.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const FIX = join(ROOT, 'fixtures', 'dkek');
const vector = JSON.parse(await readFile(join(FIX, 'public-vector.json'), 'utf8'));
const WRAP = await readFile(join(FIX, 'wrapped-btc-key.bin'));

describe('wrap files with extra data', () => {
  test('the intact file parses', () => {
    expect(blobFromFile(WRAP, 'wrap').blob.length).toBeGreaterThan(0);
  });

  test('trailing garbage after the SEQUENCE is refused with its offset', () => {
    const damaged = Buffer.concat([WRAP, Buffer.from('GARBAGE')]);
    expect(() => blobFromFile(damaged, 'wrap')).toThrow(DkekError);
    expect(() => blobFromFile(damaged, 'wrap')).toThrow(new RegExp(`7 bytes of trailing data after its DER SEQUENCE \\(at offset ${WRAP.length}\\)`));
  });

  test('a fourth element inside the SEQUENCE is refused', () => {
    const w = parseWrapFile(WRAP);
    const extra = Buffer.from([0x04, 0x03, 1, 2, 3]);
    const damaged = encodeWrapFile({ blob: w.blob, prkd: w.prkd ?? extra, certificate: Buffer.concat([w.certificate ?? extra, extra]) });
    expect(() => blobFromFile(damaged, 'wrap')).toThrow(/holds more than a key blob, a PRKD and a certificate/);
  });

  test('blob-verify of the damaged file exits 2 and never says "Restorable: yes"', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hh-wrap-trailing-'));
    try {
      const path = join(dir, 'damaged.bin');
      await writeFile(path, Buffer.concat([WRAP, Buffer.from('GARBAGE')]));
      const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          'node',
          [CLI, 'dkek', 'blob-verify', '--wrap', path, '--share', join(FIX, 'nitrokey-share.pbe'), '--password', 'env:DKEK_PW'],
          { env: { ...process.env, DKEK_PW: vector.password } },
          (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
        );
      });
      expect(r.code).toBe(2);
      expect(r.stdout).not.toMatch(/Restorable/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/trailing data/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
