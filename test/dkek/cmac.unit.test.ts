/** AES-CMAC against RFC 4493 §4 and, for AES-256 (the key size the blobs use), against the OpenSSL CLI. */
import { describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aesCmac, aesCmacVerify } from '../../src/dkek/cmac.js';

const rfc = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'dkek', 'rfc4493-aes-cmac.json'), 'utf8'));

describe('AES-CMAC', () => {
  test.each(rfc.examples as { message: string; mac: string }[])('RFC 4493 example, $message.length hex digits', ({ message, mac }) => {
    expect(aesCmac(Buffer.from(rfc.key, 'hex'), Buffer.from(message, 'hex')).toString('hex')).toBe(mac);
  });

  test('AES-256 CMAC equals `openssl mac CMAC` for messages around block boundaries', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cmac-'));
    const key = randomBytes(32);
    try {
      for (const len of [0, 1, 15, 16, 17, 32, 100, 363]) {
        const msg = randomBytes(len);
        writeFileSync(join(dir, 'm'), msg);
        const out = execFileSync('openssl', ['mac', '-cipher', 'AES-256-CBC', '-macopt', `hexkey:${key.toString('hex')}`, '-in', join(dir, 'm'), 'CMAC'])
          .toString()
          .trim()
          .toLowerCase();
        expect(aesCmac(key, msg).toString('hex'), `length ${len}`).toBe(out);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('verification rejects a changed message or MAC', () => {
    const key = randomBytes(32);
    const msg = randomBytes(40);
    const mac = aesCmac(key, msg);
    expect(aesCmacVerify(key, msg, mac)).toBe(true);
    const m2 = Buffer.from(msg);
    m2[3]! ^= 1;
    expect(aesCmacVerify(key, m2, mac)).toBe(false);
    const mac2 = Buffer.from(mac);
    mac2[15]! ^= 0x80;
    expect(aesCmacVerify(key, msg, mac2)).toBe(false);
  });
});
