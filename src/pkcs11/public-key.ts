/**
 * Public keys from their raw parts, as PKCS#11 attributes, DNSKEY records, KMIP Get answers and SmartCard-HSM
 * blobs carry them, into node:crypto. Pure: it loads no PKCS#11 module, so `dkek blob-verify` and the DNSSEC
 * and KMIP code can use it without the native addon.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';

/**
 * Unwrap a DER OCTET STRING (04 len …) if the value is one; otherwise return it unchanged.
 * PKCS#11 says CKA_EC_POINT is DER-wrapped; some tokens return the raw point (PKCS#11 2.40 mechanisms §2.3; docs/pkcs11-notes.md §6).
 */
export function unwrapOctetString(v: Buffer): { point: Buffer; derWrapped: boolean } {
  if (v.length >= 2 && v[0] === 0x04) {
    let len = v[1]!;
    let off = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 2 || v.length < 2 + n) return { point: v, derWrapped: false };
      len = n === 1 ? v[2]! : v.readUInt16BE(2);
      off = 2 + n;
    }
    if (off + len === v.length) return { point: v.subarray(off), derWrapped: true };
  }
  return { point: v, derWrapped: false };
}

/** Raw public key material as PKCS#11 reports it (public attributes readable without login). */
export interface RawPublicKey {
  family: 'rsa' | 'ec' | 'ed25519';
  modulus?: Buffer;
  exponent?: Buffer;
  /** Uncompressed EC point 04‖X‖Y, or the 32-byte Ed25519 key. */
  point?: Buffer;
  ecParams?: Buffer;
  /** The curve by name, for EC keys that come without CKA_EC_PARAMS (DNSKEY, KMIP); else ecParams decides. */
  curve?: 'P-256' | 'P-384' | 'P-521';
  /** Whether CKA_EC_POINT came DER-wrapped. */
  pointDerWrapped?: boolean;
}

const CURVE_BY_PARAMS: Record<string, 'P-256' | 'P-384' | 'P-521'> = {
  '06082a8648ce3d030107': 'P-256',
  '06052b81040022': 'P-384',
  '06052b81040023': 'P-521',
};

function b64u(b: Buffer): string {
  return b.toString('base64url');
}
/** Minimal big-endian form of an unsigned integer (JWK and DNSKEY want no leading zero bytes). */
export function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/**
 * node:crypto public key from raw public parts (an RSA modulus and exponent, a point on P-256/384/521, an Ed25519
 * key), whether they came from a token, a DNSKEY, a KMIP Get or a SmartCard-HSM RSA blob. Keys that arrive as DER
 * (KMIP's PKCS#1 and SubjectPublicKeyInfo) or on curves JWK does not name (a blob's brainpool or secp256k1 key)
 * are built by their readers from an SPKI.
 */
export function toKeyObject(pub: RawPublicKey): KeyObject {
  if (pub.family === 'rsa') {
    return createPublicKey({ key: { kty: 'RSA', n: b64u(stripLeadingZeros(pub.modulus!)), e: b64u(stripLeadingZeros(pub.exponent!)) }, format: 'jwk' });
  }
  if (pub.family === 'ed25519') {
    if (pub.point!.length !== 32) throw new Error(`Ed25519 public key is ${pub.point!.length} bytes, expected 32`);
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(pub.point!) }, format: 'jwk' });
  }
  const crv = pub.curve ?? CURVE_BY_PARAMS[pub.ecParams!.toString('hex')];
  if (!crv) throw new Error(`unsupported EC parameters ${pub.ecParams!.toString('hex')}`);
  const p = pub.point!;
  const n = (p.length - 1) / 2;
  if (p[0] !== 0x04 || !Number.isInteger(n)) throw new Error('EC point is not uncompressed (04‖X‖Y)');
  return createPublicKey({ key: { kty: 'EC', crv, x: b64u(p.subarray(1, 1 + n)), y: b64u(p.subarray(1 + n)) }, format: 'jwk' });
}
