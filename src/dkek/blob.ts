/**
 * SmartCard-HSM wrapped-key blobs (output of WRAP KEY, input of UNWRAP KEY; docs/dkek-formats.md §4):
 *   KCV[8] ‖ type[1] ‖ len‖default algorithm OID ‖ len‖allowed algorithms ‖ len‖access conditions ‖
 *   len‖key OID ‖ AES-256-CBC(Kenc, IV 0, 8 random ‖ uint16 size ‖ components ‖ padding) ‖ CMAC(Kmac)[16]
 * Parsing is lenient as docs/dkek-formats.md §4 explains (trailing bytes after the components, empty A, non-empty
 * fields 4–6, type 5 at any size) because pico-hsm and CardContact encode slightly differently.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { aesCmac, aesCmacVerify } from './cmac.js';
import { DkekError, DkekVerifyError, formatKcv, type Dkek } from './dkek.js';
import { wipe } from '../secrets.js';

export const KEY_TYPE = { RSA: 5, RSA_CRT: 6, ECC: 12, AES: 15 } as const;
export const KEY_TYPE_NAMES: Record<number, string> = { 5: 'RSA', 6: 'RSA-CRT', 12: 'ECC', 15: 'AES' };

/** Default algorithm OIDs (DER contents): id-TA-RSA-v1-5-SHA-256, id-TA-ECDSA-SHA-256, AES (2.16.840.1.101.3.4.1). */
export const ALGORITHM_OID = {
  rsa: Buffer.from('04007f00070202020102', 'hex'),
  ec: Buffer.from('04007f00070202020203', 'hex'),
  aes: Buffer.from('6086480165030401', 'hex'),
};
/** CardContact's allowed-algorithm list for AES keys (card algorithm bytes). */
const AES_ALLOWED_ALGORITHMS = Buffer.from('10111899', 'hex');

export type UnwrappedKey =
  | { kind: 'rsa'; keyType: 5 | 6; bits: number; n: Buffer; e: Buffer; d?: Buffer; p?: Buffer; q?: Buffer; dp?: Buffer; dq?: Buffer; qInv?: Buffer }
  | { kind: 'ec'; bits: number; a: Buffer; b: Buffer; prime: Buffer; order: Buffer; g: Buffer; d: Buffer; q: Buffer }
  | { kind: 'aes'; bytes: number; key: Buffer };

export interface BlobFields {
  kcv: Buffer;
  keyType: number;
  algorithm: Buffer;
  allowedAlgorithms: Buffer;
  accessConditions: Buffer;
  keyOid: Buffer;
  ciphertext: Buffer;
  mac: Buffer;
  /** Everything the CMAC covers (fields 1–7). */
  macInput: Buffer;
}

const NOT_A_BLOB = 'is truncated or not a SmartCard-HSM key blob';

/** Split a blob into its fields by the length prefixes. Throws DkekError for truncated or foreign data. */
export function parseBlob(blob: Uint8Array, what = 'key blob'): BlobFields {
  const b = Buffer.from(blob);
  if (b.length < 8 + 1 + 8 + 16 + 16) throw new DkekError(`${what} ${NOT_A_BLOB} (${b.length} bytes)`);
  let off = 9;
  const field = (): Buffer => {
    if (off + 2 > b.length - 16) throw new DkekError(`${what} ${NOT_A_BLOB} (a length field runs past the end)`);
    const len = b.readUInt16BE(off);
    if (off + 2 + len > b.length - 16) throw new DkekError(`${what} ${NOT_A_BLOB} (a field of ${len} bytes runs past the end)`);
    const v = b.subarray(off + 2, off + 2 + len);
    off += 2 + len;
    return v;
  };
  const algorithm = field(),
    allowedAlgorithms = field(),
    accessConditions = field(),
    keyOid = field();
  const ciphertext = b.subarray(off, b.length - 16);
  if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) {
    throw new DkekError(`${what} ${NOT_A_BLOB} (encrypted part of ${ciphertext.length} bytes is not a whole number of AES blocks)`);
  }
  return {
    kcv: b.subarray(0, 8),
    keyType: b[8]!,
    algorithm,
    allowedAlgorithms,
    accessConditions,
    keyOid,
    ciphertext,
    mac: b.subarray(b.length - 16),
    macInput: b.subarray(0, b.length - 16),
  };
}

/** Check the KCV and the CMAC, decrypt and decode. Every failure is a one-line DkekError. */
export function unwrapBlob(blob: Uint8Array, dkek: Dkek, what = 'key blob'): { fields: BlobFields; key: UnwrappedKey } {
  const fields = parseBlob(blob, what);
  if (!fields.kcv.equals(dkek.kcv)) {
    throw new DkekVerifyError(`blob wrapped under DKEK with KCV ${formatKcv(fields.kcv)}; these shares give ${dkek.kcvHex}`);
  }
  const kmac = dkek.kmac();
  const macOk = aesCmacVerify(kmac, fields.macInput, fields.mac);
  wipe(kmac);
  if (!macOk) throw new DkekVerifyError(`${what}: CMAC check failed, the blob was altered or damaged; use an intact copy of the backup`);
  if (!(fields.keyType in KEY_TYPE_NAMES)) {
    throw new DkekError(`${what}: unknown key type ${fields.keyType} (known: 5 RSA, 6 RSA-CRT, 12 ECC, 15 AES)`);
  }
  const kenc = dkek.kenc();
  const d = createDecipheriv('aes-256-cbc', kenc, Buffer.alloc(16)).setAutoPadding(false);
  const plain = Buffer.concat([d.update(fields.ciphertext), d.final()]);
  wipe(kenc);
  try {
    return { fields, key: decodeKey(fields.keyType, plain, what) };
  } finally {
    wipe(plain);
  }
}

function decodeKey(keyType: number, plain: Buffer, what: string): UnwrappedKey {
  if (plain.length < 10) throw new DkekError(`${what}: decrypted key data is too short`);
  const size = plain.readUInt16BE(8);
  let off = 10;
  // Components are copied out so that the plaintext buffer can be wiped.
  const next = (name: string): Buffer => {
    if (off + 2 > plain.length) throw new DkekError(`${what}: key data ends before component ${name}`);
    const len = plain.readUInt16BE(off);
    if (off + 2 + len > plain.length) throw new DkekError(`${what}: component ${name} (${len} bytes) runs past the key data`);
    const v = Buffer.from(plain.subarray(off + 2, off + 2 + len));
    off += 2 + len;
    return v;
  };
  switch (keyType) {
    case KEY_TYPE.RSA: {
      const d = next('d'),
        n = next('n'),
        e = next('e');
      return { kind: 'rsa', keyType: 5, bits: size, n, e, d };
    }
    case KEY_TYPE.RSA_CRT: {
      const dp = next('dp1'),
        dq = next('dq1'),
        p = next('p'),
        qInv = next('pq'),
        q = next('q'),
        n = next('n'),
        e = next('e');
      return { kind: 'rsa', keyType: 6, bits: size, n, e, p, q, dp, dq, qInv };
    }
    case KEY_TYPE.ECC: {
      const a = next('A'),
        b = next('B'),
        prime = next('P'),
        order = next('N'),
        g = next('G'),
        d = next('D'),
        q = next('Q');
      return { kind: 'ec', bits: size, a, b, prime, order, g, d, q };
    }
    default: {
      if (size === 0 || 10 + size > plain.length) throw new DkekError(`${what}: AES key size ${size} does not fit the key data`);
      return { kind: 'aes', bytes: size, key: Buffer.from(plain.subarray(10, 10 + size)) };
    }
  }
}

function lv(v: Uint8Array): Buffer {
  const l = Buffer.alloc(2);
  l.writeUInt16BE(v.length);
  return Buffer.concat([l, v]);
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

/** Key components as `wrapBlob` takes them (RSA: give p,q,dp,dq,qInv for type 6 or d for type 5). */
export type KeyToWrap =
  | { kind: 'rsa'; n: Buffer; e: Buffer; d?: Buffer; p?: Buffer; q?: Buffer; dp?: Buffer; dq?: Buffer; qInv?: Buffer }
  | { kind: 'ec'; curve: { p: string; a: string; b: string; g: string; n: string; bytes: number }; d: Buffer; q: Buffer }
  | { kind: 'aes'; key: Buffer };

/**
 * Encode and encrypt a key the way CardContact's DKEK.js does: ISO 9797-1 method 2 padding to 8 bytes, plus
 * 8 zero bytes when that leaves a half block; RSA above 2048 bits or without CRT parts goes as type 5.
 */
export function wrapBlob(key: KeyToWrap, dkek: Dkek): Buffer {
  let keyType: number,
    algorithm: Buffer,
    allowed = Buffer.alloc(0);
  const parts: Buffer[] = [randomBytes(8)];
  if (key.kind === 'rsa') {
    const crt = key.p && key.q && key.dp && key.dq && key.qInv && key.n.length <= 256;
    keyType = crt ? KEY_TYPE.RSA_CRT : KEY_TYPE.RSA;
    algorithm = ALGORITHM_OID.rsa;
    parts.push(u16(key.n.length * 8));
    if (crt) parts.push(lv(key.dp!), lv(key.dq!), lv(key.p!), lv(key.qInv!), lv(key.q!));
    else {
      if (!key.d) throw new DkekError('an RSA key to wrap needs d, or p, q, dp, dq and qInv');
      parts.push(lv(key.d));
    }
    parts.push(lv(key.n), lv(key.e));
  } else if (key.kind === 'ec') {
    keyType = KEY_TYPE.ECC;
    algorithm = ALGORITHM_OID.ec;
    const c = key.curve;
    const fe = (hex: string) => Buffer.from(hex, 'hex');
    const pad = (v: Buffer) => Buffer.concat([Buffer.alloc(Math.max(0, c.bytes - v.length)), v]);
    parts.push(u16(c.bytes * 8), lv(fe(c.a)), lv(fe(c.b)), lv(fe(c.p)), lv(fe(c.n)), lv(fe(c.g)), lv(pad(key.d)), lv(key.q));
  } else {
    keyType = KEY_TYPE.AES;
    algorithm = ALGORITHM_OID.aes;
    allowed = AES_ALLOWED_ALGORITHMS;
    parts.push(u16(key.key.length), Buffer.from(key.key));
  }
  let plain = Buffer.concat([...parts, Buffer.from([0x80])]);
  const padded = Math.ceil(plain.length / 8) * 8;
  const total = padded % 16 ? padded + 8 : padded;
  const full = Buffer.concat([plain, Buffer.alloc(total - plain.length)]);
  wipe(plain, ...parts);
  plain = full;
  const kenc = dkek.kenc();
  const c = createCipheriv('aes-256-cbc', kenc, Buffer.alloc(16)).setAutoPadding(false);
  const ciphertext = Buffer.concat([c.update(plain), c.final()]);
  wipe(kenc, plain);
  const body = Buffer.concat([dkek.kcv, Buffer.from([keyType]), lv(algorithm), lv(allowed), lv(Buffer.alloc(0)), lv(Buffer.alloc(0)), ciphertext]);
  const kmac = dkek.kmac();
  const mac = aesCmac(kmac, body);
  wipe(kmac);
  return Buffer.concat([body, mac]);
}
