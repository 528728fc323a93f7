/**
 * The specialised iterated MD5 against node:crypto's MD5 (an independent implementation) on small
 * iteration counts, and the full 10,000,000-iteration KDF against the real-device vector (docs/dkek-formats.md §8).
 * Share-file layout is checked against the OpenSSL CLI, which uses the same EVP_BytesToKey with one iteration;
 * together with the 10M-iteration checkpoints that covers share-file creation without another full KDF.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evpBytesToKeyMd5, md5RehashDigest, shareFileKeyIv } from '../../src/dkek/kdf.js';
import { createShareFile, decryptShareFile } from '../../src/dkek/share.js';
import { DkekError } from '../../src/dkek/dkek.js';

const FIX = join(import.meta.dirname, '..', '..', 'fixtures', 'dkek');
const vector = JSON.parse(readFileSync(join(FIX, 'public-vector.json'), 'utf8'));

/** EVP_BytesToKey written the obvious way with node:crypto, as the oracle. */
function naiveBytesToKey(password: Buffer, salt: Buffer, iterations: number, length: number): Buffer {
  const out: Buffer[] = [];
  let prev = Buffer.alloc(0);
  while (Buffer.concat(out).length < length) {
    let d = createHash('md5').update(prev).update(password).update(salt).digest();
    for (let i = 1; i < iterations; i++) d = createHash('md5').update(d).digest();
    out.push(d);
    prev = d;
  }
  return Buffer.concat(out).subarray(0, length);
}

describe('iterated MD5', () => {
  test('md5RehashDigest equals repeated node:crypto MD5 for random digests', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 300 }), (bytes, times) => {
        let want = Buffer.from(bytes);
        for (let i = 0; i < times; i++) want = createHash('md5').update(want).digest();
        const got = Buffer.from(bytes);
        md5RehashDigest(got, times);
        expect(got.toString('hex')).toBe(want.toString('hex'));
      }),
      { numRuns: 60 },
    );
  });

  test('evpBytesToKeyMd5 equals the naive node:crypto construction', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.constantFrom(1, 2, 3, 1000), (pw, salt, n) => {
        expect(evpBytesToKeyMd5(pw, salt, n, 48).toString('hex')).toBe(naiveBytesToKey(Buffer.from(pw), Buffer.from(salt), n, 48).toString('hex'));
      }),
      { numRuns: 40 },
    );
  });

  test('10,000,000 iterations reproduce the key and IV checkpoints of the real-device vector', () => {
    const { key, iv } = shareFileKeyIv(Buffer.from(vector.password), Buffer.from(vector.salt, 'hex'));
    expect(key.toString('hex')).toBe(vector.kdfKey);
    expect(iv.toString('hex')).toBe(vector.kdfIv);
  });
});

describe('share files', () => {
  test('the Nitrokey share file decrypts to the published share', () => {
    const share = decryptShareFile(readFileSync(join(FIX, 'nitrokey-share.pbe')), vector.password);
    expect(share.toString('hex')).toBe(vector.share);
  });

  test('the published key/IV checkpoints decrypt the file with node:crypto alone (layout check)', () => {
    const file = Buffer.from(vector.shareFile, 'hex');
    const d = createDecipheriv('aes-256-cbc', Buffer.from(vector.kdfKey, 'hex'), Buffer.from(vector.kdfIv, 'hex'));
    expect(Buffer.concat([d.update(file.subarray(16)), d.final()]).toString('hex')).toBe(vector.share);
  });

  test('a one-iteration share file is what `openssl enc -aes-256-cbc -md md5` reads (independent layout check)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dkek-openssl-'));
    const share = randomBytes(32);
    const { file } = createShareFile('correct horse', { share, iterations: 1 });
    writeFileSync(join(dir, 'share.pbe'), file);
    let out: Buffer;
    try {
      out = execFileSync('openssl', ['enc', '-d', '-aes-256-cbc', '-md', 'md5', '-pass', 'pass:correct horse', '-in', join(dir, 'share.pbe')], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(out.toString('hex')).toBe(share.toString('hex'));
  });

  test('a wrong password fails the padding check with a one-line message', () => {
    const { file } = createShareFile('right password', { iterations: 1000 });
    expect(() => decryptShareFile(file, 'wrong password', 'x.pbe', 1000)).toThrow(new DkekError('x.pbe: wrong password or corrupted share file'));
    const share = decryptShareFile(file, 'right password', 'x.pbe', 1000);
    expect(share).toHaveLength(32);
  });

  test('truncated and foreign files are rejected before any key derivation', () => {
    expect(() => decryptShareFile(Buffer.from(vector.shareFile, 'hex').subarray(0, 63), 'p', 'short.pbe')).toThrow(/short.pbe is not a DKEK share file/);
    expect(() => decryptShareFile(Buffer.alloc(64, 0x41), 'p', 'foreign.pbe')).toThrow(/not a DKEK share file/);
  });
});
