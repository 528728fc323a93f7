/**
 * DNSKEY RDATA and key tags from a public key, for the algorithms DNSSEC signers use on HSMs:
 * 8 RSASHA256 and 10 RSASHA512 (RFC 5702, key format RFC 3110), 13 ECDSAP256SHA256 and 14 ECDSAP384SHA384
 * (RFC 6605), 15 ED25519 (RFC 8080). The key may be a node:crypto KeyObject or the raw public key read
 * from a PKCS#11 token (src/pkcs11/keys.ts RawPublicKey), so KMIP and PKCS#11 suites share one encoder.
 *
 *   dnskeyRdata(13, publicKeyObject(token, handle))   // Buffer: flags | protocol | algorithm | key
 *   keyTag(rdata)                                     // RFC 4034 Appendix B
 */
import type { KeyObject } from 'node:crypto';
import { type RawPublicKey, stripLeadingZeros, toKeyObject } from '../pkcs11/public-key.js';
import { u16 } from './wire.js';

export type DnssecAlgorithm = 8 | 10 | 13 | 14 | 15;

export interface DnssecAlgorithmInfo {
  /** IANA mnemonic. */
  name: string;
  family: 'rsa' | 'ec' | 'ed25519';
  /** Hash applied to the signed data (RSA, ECDSA); Ed25519 signs the data itself. */
  hash?: 'sha256' | 'sha384' | 'sha512';
  curve?: 'P-256' | 'P-384';
  /** Octets per ECDSA coordinate / signature half. */
  fieldBytes?: number;
}

export const DNSSEC_ALGORITHMS: Record<DnssecAlgorithm, DnssecAlgorithmInfo> = {
  8: { name: 'RSASHA256', family: 'rsa', hash: 'sha256' },
  10: { name: 'RSASHA512', family: 'rsa', hash: 'sha512' },
  13: { name: 'ECDSAP256SHA256', family: 'ec', hash: 'sha256', curve: 'P-256', fieldBytes: 32 },
  14: { name: 'ECDSAP384SHA384', family: 'ec', hash: 'sha384', curve: 'P-384', fieldBytes: 48 },
  15: { name: 'ED25519', family: 'ed25519' },
};

/** Zone Key flag (256) plus Secure Entry Point (1): a KSK, which also signs the zone in our single-key tests. */
export const FLAGS_KSK = 257;
export const FLAGS_ZSK = 256;

function asKeyObject(key: KeyObject | RawPublicKey): KeyObject {
  return 'family' in key ? toKeyObject(key) : key;
}

function leftPad(b: Buffer, len: number): Buffer {
  if (b.length > len) throw new Error(`coordinate is ${b.length} bytes, expected at most ${len}`);
  return Buffer.concat([Buffer.alloc(len - b.length), b]);
}

/** The DNSKEY Public Key field for a key of the algorithm's type. Throws if key and algorithm do not match. */
export function dnskeyPublicKey(alg: DnssecAlgorithm, key: KeyObject | RawPublicKey): Buffer {
  const info = DNSSEC_ALGORITHMS[alg];
  if (!info) throw new Error(`unsupported DNSSEC algorithm ${alg}`);
  const jwk = asKeyObject(key).export({ format: 'jwk' });
  if (info.family === 'rsa') {
    if (jwk.kty !== 'RSA') throw new Error(`algorithm ${alg} (${info.name}) needs an RSA key, got ${jwk.kty}`);
    // RFC 3110 §2: exponent length (1 octet, or 0 then 2 octets), exponent, modulus; no leading zeros.
    const e = stripLeadingZeros(Buffer.from(jwk.e!, 'base64url'));
    const n = stripLeadingZeros(Buffer.from(jwk.n!, 'base64url'));
    const len = e.length <= 255 ? Buffer.from([e.length]) : Buffer.concat([Buffer.from([0]), u16(e.length)]);
    return Buffer.concat([len, e, n]);
  }
  if (info.family === 'ec') {
    if (jwk.kty !== 'EC' || jwk.crv !== info.curve)
      throw new Error(`algorithm ${alg} (${info.name}) needs a ${info.curve} key, got ${jwk.kty} ${jwk.crv ?? ''}`.trim());
    // RFC 6605 §4: X ‖ Y, each exactly the field size (no 04 prefix).
    return Buffer.concat([leftPad(Buffer.from(jwk.x!, 'base64url'), info.fieldBytes!), leftPad(Buffer.from(jwk.y!, 'base64url'), info.fieldBytes!)]);
  }
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519')
    throw new Error(`algorithm ${alg} (${info.name}) needs an Ed25519 key, got ${jwk.kty} ${jwk.crv ?? ''}`.trim());
  // RFC 8080 §3: the 32-octet public key of RFC 8032.
  return Buffer.from(jwk.x!, 'base64url');
}

/** DNSKEY RDATA (RFC 4034 §2.1): flags, protocol 3, algorithm, public key. */
export function dnskeyRdata(alg: DnssecAlgorithm, key: KeyObject | RawPublicKey, flags: number = FLAGS_KSK): Buffer {
  return Buffer.concat([u16(flags), Buffer.from([3, alg]), dnskeyPublicKey(alg, key)]);
}

/** The key tag of a DNSKEY RDATA, RFC 4034 Appendix B (the ones'-complement-like sum; not for algorithm 1). */
export function keyTag(rdata: Buffer): number {
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? rdata[i]! : rdata[i]! << 8;
  ac += (ac >> 16) & 0xffff;
  return ac & 0xffff;
}

/** The inverse of dnskeyRdata: a node:crypto public key from DNSKEY RDATA (to verify with, or to compare). */
export function dnskeyToKeyObject(rdata: Buffer): KeyObject {
  const alg = rdata[3] as DnssecAlgorithm;
  const info = DNSSEC_ALGORITHMS[alg];
  if (!info) throw new Error(`unsupported DNSSEC algorithm ${rdata[3]}`);
  const key = rdata.subarray(4);
  if (info.family === 'rsa') {
    const long = key[0] === 0;
    const elen = long ? key.readUInt16BE(1) : key[0]!;
    const off = long ? 3 : 1;
    return toKeyObject({ family: 'rsa', exponent: key.subarray(off, off + elen), modulus: key.subarray(off + elen) });
  }
  if (info.family === 'ec') {
    const f = info.fieldBytes!;
    if (key.length !== 2 * f) throw new Error(`${info.name} public key is ${key.length} bytes, expected ${2 * f}`);
    // RFC 6605 stores X‖Y; the uncompressed point adds the 04 prefix.
    return toKeyObject({ family: 'ec', curve: info.curve, point: Buffer.concat([Buffer.from([4]), key]) });
  }
  return toKeyObject({ family: 'ed25519', point: key });
}

/** DNSKEY presentation text: "257 3 13 <base64>". */
export function dnskeyText(rdata: Buffer): string {
  return `${rdata.readUInt16BE(0)} ${rdata[2]} ${rdata[3]} ${rdata.subarray(4).toString('base64')}`;
}
