/**
 * Key blobs and wrap files: the real-device wrap file from docs/dkek-formats.md §8, round trips with keys made by
 * node:crypto, lenient parsing of blobs built by hand in this file (pico-hsm style), and the negative cases.
 */
import { describe, expect, test } from 'vitest';
import { createCipheriv, generateKeyPairSync, randomBytes, sign, verify, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Dkek, DkekVerifyError } from '../../src/dkek/dkek.js';
import { parseBlob, unwrapBlob, wrapBlob } from '../../src/dkek/blob.js';
import { encodeWrapFile, parseWrapFile, blobFromFile } from '../../src/dkek/wrapfile.js';
import { verifyBlob } from '../../src/dkek/verify.js';
import { keyToWrapFromKeyObject, privateKeyObject } from '../../src/dkek/keys.js';
import { aesCmac } from '../../src/dkek/cmac.js';
import { curveByName } from '../../src/dkek/curves.js';

const FIX = join(import.meta.dirname, '..', '..', 'fixtures', 'dkek');
const vector = JSON.parse(readFileSync(join(FIX, 'public-vector.json'), 'utf8'));
const wrapFileBytes = readFileSync(join(FIX, 'wrapped-btc-key.bin'));
const deviceDkek = () => Dkek.fromShares([Buffer.from(vector.share, 'hex')]);
/** KCV of a DKEK (a one-share DKEK is the share itself) by docs/dkek-formats.md §3: SHA-256 of the key, first 8 bytes, with node:crypto. */
const kcvOf = (share: Buffer) => createHash('sha256').update(share).digest().subarray(0, 8).toString('hex').toUpperCase();

/** Re-MAC a modified blob under a DKEK, so that only the modification is under test. */
function remac(blob: Buffer, dkek: Dkek): Buffer {
  const body = blob.subarray(0, blob.length - 16);
  return Buffer.concat([body, aesCmac(dkek.kmac(), body)]);
}

describe('DKEK from the public vector', () => {
  test('KCV, Kenc and Kmac equal the published checkpoints', () => {
    const d = deviceDkek();
    expect(d.kcvHex).toBe(vector.kcv);
    expect(d.kenc().toString('hex')).toBe(vector.kenc);
    expect(d.kmac().toString('hex')).toBe(vector.kmac);
  });

  test('the DKEK is the XOR of its shares, in any order', () => {
    const a = randomBytes(32),
      b = randomBytes(32);
    const x = Buffer.from(a.map((v, i) => v ^ b[i]!));
    const expected = kcvOf(x);
    expect(Dkek.fromShares([a, b]).kcvHex).toBe(expected);
    expect(Dkek.fromShares([b, a]).kcvHex).toBe(expected);
  });
});

describe('the real-device wrap file (secp256k1 key wrapped by a Nitrokey HSM)', () => {
  test('parses into blob, PRKD and CV request of the published sizes', () => {
    expect(wrapFileBytes).toHaveLength(vector.wrapFile.bytes);
    const wf = parseWrapFile(wrapFileBytes);
    expect(wf.blob).toHaveLength(vector.wrapFile.blobBytes);
    expect(wf.prkd).toHaveLength(vector.wrapFile.prkdBytes);
    expect(wf.prkd![0]).toBe(0xa0);
    expect(wf.certificate![0]!.toString(16)).toBe(vector.wrapFile.certificateTag);
    const f = parseBlob(wf.blob);
    expect(f.keyType).toBe(vector.wrapFile.keyType);
    expect(f.ciphertext).toHaveLength(vector.wrapFile.ciphertextBytes);
    expect([f.allowedAlgorithms.length, f.accessConditions.length, f.keyOid.length]).toEqual([0, 0, 0]);
    expect(encodeWrapFile(wf).equals(wrapFileBytes)).toBe(true);
  });

  test('verifies offline: KCV, CMAC, secp256k1, size 256, Q = d·G', () => {
    const { report, key } = verifyBlob(parseWrapFile(wrapFileBytes).blob, deviceDkek());
    expect(report.kcv).toBe(vector.kcv);
    expect(report.keyType).toBe(12);
    expect(report.keySize).toBe(vector.wrapFile.keySize);
    expect(report.publicKey.curve).toBe(vector.wrapFile.curve);
    expect(report.publicKey.point).toBe(vector.wrapFile.publicPoint);
    expect(report.restorable).toBe(true);
    expect(report.checks.find((c) => c.name === 'Q = d·G')?.ok).toBe(true);
    if (key.kind !== 'ec') throw new Error('expected EC');
    expect(key.a.equals(Buffer.alloc(32))).toBe(true);
    // Independent: node:crypto signs with the recovered d and verifies with the blob's public point.
    const priv = privateKeyObject(key);
    const sig = sign('sha256', Buffer.from('x'), priv);
    expect(verify('sha256', Buffer.from('x'), report.publicKey.pem!, sig)).toBe(true);
  });

  test('a flipped byte anywhere in the blob fails the CMAC (or KCV when it hits the KCV)', () => {
    const blob = parseWrapFile(wrapFileBytes).blob;
    for (const at of [8, 20, 100, blob.length - 17, blob.length - 1]) {
      const bad = Buffer.from(blob);
      bad[at]! ^= 0x01;
      expect(() => unwrapBlob(bad, deviceDkek()), `byte ${at}`).toThrow(/CMAC check failed/);
    }
    const bad = Buffer.from(blob);
    bad[0]! ^= 0x01;
    expect(() => unwrapBlob(bad, deviceDkek())).toThrow(/blob wrapped under DKEK with KCV 96E303855DC1C54D; these shares give 97E303855DC1C54D/);
  });

  test('a different DKEK is a KCV mismatch naming both KCVs', () => {
    const share = randomBytes(32);
    expect(() => unwrapBlob(parseWrapFile(wrapFileBytes).blob, Dkek.fromShares([share]))).toThrow(
      new DkekVerifyError(`blob wrapped under DKEK with KCV ${vector.kcv}; these shares give ${kcvOf(share)}`),
    );
  });

  test('an unknown key type with a valid CMAC is refused by name', () => {
    const d = deviceDkek();
    const blob = Buffer.from(parseWrapFile(wrapFileBytes).blob);
    blob[8] = 99;
    expect(() => unwrapBlob(remac(blob, d), d)).toThrow(/unknown key type 99/);
  });

  test('truncated and foreign data is refused', () => {
    expect(() => parseWrapFile(wrapFileBytes.subarray(0, 500))).toThrow(/truncated or not an sc-hsm-tool wrap file/);
    expect(() => parseBlob(parseWrapFile(wrapFileBytes).blob.subarray(0, 40))).toThrow(/truncated or not a SmartCard-HSM key blob/);
    expect(() => parseBlob(randomBytes(200))).toThrow(/truncated or not a SmartCard-HSM key blob/);
    expect(() => parseWrapFile(Buffer.from('3003020101', 'hex'))).toThrow(/first element is not an OCTET STRING/);
  });

  test('a bare blob is accepted where a wrap file is expected', () => {
    const wf = parseWrapFile(wrapFileBytes);
    expect(blobFromFile(wf.blob, 'x').blob.equals(wf.blob)).toBe(true);
    expect(blobFromFile(wrapFileBytes, 'x').prkd?.equals(wf.prkd!)).toBe(true);
  });
});

describe('wrap and unwrap round trips with keys from node:crypto', () => {
  const dkek = Dkek.fromShares([randomBytes(32), randomBytes(32)]);
  const cases = [
    { name: 'EC P-256', pair: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }), type: 12 },
    { name: 'EC P-384', pair: () => generateKeyPairSync('ec', { namedCurve: 'P-384' }), type: 12 },
    { name: 'EC P-521', pair: () => generateKeyPairSync('ec', { namedCurve: 'P-521' }), type: 12 },
    { name: 'EC secp256k1', pair: () => generateKeyPairSync('ec', { namedCurve: 'secp256k1' }), type: 12 },
    { name: 'RSA 2048 (CRT, type 6)', pair: () => generateKeyPairSync('rsa', { modulusLength: 2048 }), type: 6 },
    { name: 'RSA 3072 (type 5 above 2048 bits)', pair: () => generateKeyPairSync('rsa', { modulusLength: 3072 }), type: 5 },
  ];
  test.each(cases)('$name', ({ pair, type }) => {
    const { privateKey, publicKey } = pair();
    const blob = wrapBlob(keyToWrapFromKeyObject(privateKey), dkek);
    const { report, key } = verifyBlob(blob, dkek, { expectedPublicKey: publicKey });
    expect(report.keyType).toBe(type);
    expect(report.restorable).toBe(true);
    expect(report.checks.every((c) => c.ok)).toBe(true);
    if (type !== 5) {
      const sig = sign('sha256', Buffer.from('m'), privateKeyObject(key));
      expect(verify('sha256', Buffer.from('m'), publicKey, sig)).toBe(true);
    }
    // ciphertext is whole AES blocks and the MAC covers everything before it
    expect(parseBlob(blob).ciphertext.length % 16).toBe(0);
  });

  test('AES-256 key', () => {
    const k = randomBytes(32);
    const { report, key } = verifyBlob(wrapBlob({ kind: 'aes', key: k }, dkek), dkek);
    expect(report.keyType).toBe(15);
    expect(report.keySize).toBe(32);
    expect(key.kind === 'aes' && key.key.equals(k)).toBe(true);
  });

  test('a blob whose public point is not d·G is reported not restorable', () => {
    const a = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const b = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const wa = keyToWrapFromKeyObject(a),
      wb = keyToWrapFromKeyObject(b);
    if (wa.kind !== 'ec' || wb.kind !== 'ec') throw new Error('expected EC');
    const { report } = verifyBlob(wrapBlob({ ...wa, q: wb.q }, dkek), dkek);
    expect(report.restorable).toBe(false);
    expect(report.checks.find((c) => c.name === 'Q = d·G')?.ok).toBe(false);
  });

  test('an RSA blob with a wrong private exponent fails (m^e)^d ≡ m', () => {
    const k = keyToWrapFromKeyObject(generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey);
    if (k.kind !== 'rsa') throw new Error('expected RSA');
    const d = Buffer.from(k.d!);
    d[d.length - 1]! ^= 0x02;
    const { report } = verifyBlob(wrapBlob({ kind: 'rsa', n: k.n, e: k.e, d }, dkek), dkek);
    expect(report.restorable).toBe(false);
  });

  test('a different token public key makes the comparison fail', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const { report } = verifyBlob(wrapBlob(keyToWrapFromKeyObject(privateKey), dkek), dkek, { expectedPublicKey: other });
    expect(report.checks.find((c) => c.name === "public key equals the token's")?.ok).toBe(false);
    expect(report.restorable).toBe(false);
  });
});

describe('lenient parsing (pico-hsm style blobs built by hand here)', () => {
  test('empty A, non-empty fields 4–6 and 16-byte padding without extra zeros are accepted', () => {
    const dkek = Dkek.fromShares([randomBytes(32)]);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = privateKey.export({ format: 'jwk' });
    const c = curveByName('P-256')!;
    const lv = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
    const q = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    let plain = Buffer.concat([
      randomBytes(8),
      Buffer.from([0x01, 0x00]),
      lv(Buffer.alloc(0)),
      lv(Buffer.from(c.b, 'hex')),
      lv(Buffer.from(c.p, 'hex')),
      lv(Buffer.from(c.n, 'hex')),
      lv(Buffer.from(c.g, 'hex')),
      lv(Buffer.from(jwk.d!, 'base64url')),
      lv(q),
      Buffer.from([0x80]),
    ]);
    plain = Buffer.concat([plain, Buffer.alloc((16 - (plain.length % 16)) % 16)]);
    const enc = createCipheriv('aes-256-cbc', dkek.kenc(), Buffer.alloc(16)).setAutoPadding(false);
    const body = Buffer.concat([
      dkek.kcv,
      Buffer.from([12]),
      lv(Buffer.from('04007f00070202020203', 'hex')),
      lv(Buffer.from('7071', 'hex')),
      lv(Buffer.from('01', 'hex')),
      lv(Buffer.from('0601', 'hex')),
      enc.update(plain),
      enc.final(),
    ]);
    const blob = Buffer.concat([body, aesCmac(dkek.kmac(), body)]);
    const { report } = verifyBlob(blob, dkek);
    expect(report.restorable).toBe(true);
    expect(report.allowedAlgorithms).toBe('7071');
    expect(report.publicKey.curve).toBe('P-256');
  });
});
